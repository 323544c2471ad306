// Minimal typings for ltx 3.x (the package ships none). Only what Megaphone uses.
declare module "ltx" {
  import { EventEmitter } from "node:events";

  export type Node = Element | string;

  export class Element {
    constructor(name: string, attrs?: Record<string, string | number | undefined | null>);
    name: string;
    attrs: Record<string, string>;
    children: Node[];
    parent: Element | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getAttr(name: string): string | undefined;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildElements(): Element[];
    getText(): string;
    getChildText(name: string, xmlns?: string): string | null;
    c(name: string, attrs?: Record<string, string | number | undefined | null>): Element;
    cnode(child: Element): Element;
    append(...nodes: Node[]): Element;
    t(text: string): Element;
    up(): Element;
    root(): Element;
    remove(el: Element | string, xmlns?: string): Element;
    toString(): string;
  }

  /** The event-emitting SAX parser (startElement, endElement, text, error). */
  export class SaxLtx extends EventEmitter {
    write(data: string): void;
    end(data?: string): void;
  }

  export function parse(xml: string): Element;
  export function createElement(
    name: string,
    attrs?: Record<string, string | number | undefined | null> | null,
    ...children: Node[]
  ): Element;
  export function escapeXML(s: string): string;
  export function escapeXMLText(s: string): string;
  export function unescapeXML(s: string): string;
}

declare module "ltx/src/parsers/ltx.js" {
  import { SaxLtx } from "ltx";
  export default SaxLtx;
}
