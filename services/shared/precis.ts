// RFC 8264 (PRECIS), RFC 8265 (the UsernameCaseMapped and OpaqueString profiles) and RFC 5893
// (the bidi rule), as RFC 7622 §3 applies them to JID parts, with the Unicode properties a
// JavaScript regular expression offers. What is approximated, and how:
// - Character classes follow the derived properties of RFC 8264 §9 by General_Category;
//   contextual code points are refused rather than checked in context (ZWJ/ZWNJ, CONTEXTJ, are
//   Cf; the CONTEXTO ones in identifiers, e.g. U+00B7, are punctuation); Old Hangul Jamo and the
//   RFC 5892 exceptions are not special-cased.
// - JavaScript has no Bidi_Class property, so the bidi rule derives it from General_Category
//   and Script: a letter of a right-to-left script is R/AL, the digits listed in ARABIC_DIGITS
//   are AN, ASCII and Extended Arabic-Indic digits are EN, non-spacing and enclosing marks are
//   NSM, every other letter, digit or spacing mark is L, and the rest is neutral.

/** Never valid in any JID part: controls, format characters (bidi controls, joiners), surrogates, private use, unassigned, line and paragraph separators, default-ignorables. */
const DISALLOWED = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

/** RFC 8264 §9.1 LetterDigits and §9.11 ASCII7 (printable ASCII): the IdentifierClass (§4.2). */
const IDENTIFIER_CHAR = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}\u0021-\u007e]$/u;

const RTL_SCRIPTS = [
  "Hebrew",
  "Arabic",
  "Syriac",
  "Thaana",
  "Nko",
  "Samaritan",
  "Mandaic",
  "Adlam",
  "Hanifi_Rohingya",
  "Mende_Kikakui",
  "Imperial_Aramaic",
  "Phoenician",
  "Kharoshthi",
  "Old_South_Arabian",
  "Old_North_Arabian",
  "Avestan",
  "Inscriptional_Parthian",
  "Inscriptional_Pahlavi",
  "Psalter_Pahlavi",
  "Old_Turkic",
  "Lydian",
  "Cypriot",
  "Nabataean",
  "Palmyrene",
  "Hatran",
  "Manichaean",
  "Old_Hungarian",
  "Sogdian",
  "Old_Sogdian",
  "Elymaic",
  "Chorasmian",
  "Yezidi",
  "Meroitic_Cursive",
  "Meroitic_Hieroglyphs",
];
const RTL_LETTER = new RegExp(
  `^(?=\\p{L})[${RTL_SCRIPTS.map((s) => `\\p{Script=${s}}`).join("")}]$`,
  "u",
);
/** Bidi_Class AN (Arabic number) among code points that are not Cf. */
const ARABIC_DIGITS = /^[\u0660-\u0669\u066b\u066c\u{10d30}-\u{10d39}\u{10e60}-\u{10e7e}]$/u;
/** Bidi_Class EN (European number) among digits that identifiers may hold. */
const EUROPEAN_DIGITS = /^[0-9\u06f0-\u06f9]$/u;
const NSM = /^[\p{Mn}\p{Me}]$/u;
const LTR = /^[\p{L}\p{Nd}\p{Nl}\p{No}\p{Mc}]$/u;

type BidiClass = "R" | "AN" | "EN" | "NSM" | "L" | "neutral";

function bidiClass(c: string): BidiClass {
  if (RTL_LETTER.test(c)) return "R"; // R and AL are treated alike by the rule
  if (ARABIC_DIGITS.test(c)) return "AN";
  if (EUROPEAN_DIGITS.test(c)) return "EN";
  if (NSM.test(c)) return "NSM";
  if (LTR.test(c)) return "L";
  return "neutral"; // ES, CS, ET, ON (and BN, which DISALLOWED refuses first)
}

/**
 * RFC 5893 §2, for one label (a localpart, or one label of a domainpart): a string with no
 * right-to-left character passes (PRECIS applies the rule to strings that contain one, RFC 8264
 * §8, and RFC 5893 to bidi domain names only). A right-to-left one must start with an R/AL
 * character, hold no L character, end with R/AL, EN or AN (before trailing marks), and not mix
 * EN with AN. Returns the broken rule, or undefined.
 */
export function bidiRuleProblem(label: string): string | undefined {
  const classes = [...label].map(bidiClass);
  if (!classes.some((c) => c === "R" || c === "AN")) return undefined;
  if (classes[0] !== "R") return "a right-to-left label must start with a right-to-left letter";
  if (classes.includes("L")) return "a right-to-left label cannot hold left-to-right characters";
  let end = classes.length - 1;
  while (end > 0 && classes[end] === "NSM") end--;
  if (!["R", "EN", "AN"].includes(classes[end]))
    return "a right-to-left label must end with a right-to-left letter or a digit";
  if (classes.includes("EN") && classes.includes("AN"))
    return "a right-to-left label cannot mix European and Arabic-Indic digits";
  return undefined;
}

/** The first code point no JID part may hold (control, format, …), or undefined. */
export function disallowedCodePoint(s: string): string | undefined {
  return DISALLOWED.exec(s)?.[0];
}

function codePoint(c: string): string {
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * RFC 8265 §3.3 UsernameCaseMapped, preparation and enforcement: width mapping (fullwidth and
 * halfwidth forms to their decomposition), lowercase, NFC, then every code point must be of the
 * IdentifierClass with no compatibility decomposition (HasCompat, RFC 8264 §9.17), and the bidi
 * rule holds. Returns [prepared, problem]; problem is undefined when the string is valid.
 */
export function usernameCaseMapped(s: string): [string, string | undefined] {
  const prepared = s
    .replace(/[\uff01-\uffef]/gu, (c) => c.normalize("NFKC"))
    .toLowerCase()
    .normalize("NFC");
  const bad = disallowedCodePoint(prepared);
  if (bad !== undefined) return [prepared, `${codePoint(bad)} is not allowed`];
  for (const c of prepared) {
    if (!IDENTIFIER_CHAR.test(c) || c.normalize("NFKC") !== c)
      return [prepared, `${codePoint(c)} is not allowed in a localpart`];
  }
  return [prepared, bidiRuleProblem(prepared)];
}

/**
 * RFC 8265 §4.2 OpaqueString: non-ASCII spaces map to U+0020, NFC, and no code point of
 * DISALLOWED (the FreeformClass refuses controls, ignorables and unassigned code points, and
 * joiners outside their context). No case mapping and no bidi rule. Returns [prepared, problem].
 */
export function opaqueString(s: string): [string, string | undefined] {
  const prepared = s.replace(/\p{Zs}/gu, " ").normalize("NFC");
  const bad = disallowedCodePoint(prepared);
  return [prepared, bad === undefined ? undefined : `${codePoint(bad)} is not allowed`];
}
