// Type-checks one TypeScript source held in memory, as if it were the file `file` (so its
// imports resolve from there), with the project's strict settings. The schema checks (Kubernetes
// objects, the Grafana dashboard) compile generated sources through it.
import ts from "typescript";

export interface Diagnostic {
  /** 0-based line in `source`, when the problem is there (else in a library, or global). */
  line: number | undefined;
  /** The file the problem is in, when not in `source`. */
  fileName: string | undefined;
  message: string;
}

export function typeCheckSource(file: string, source: string): Diagnostic[] {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, onError, create) =>
    name === file
      ? ts.createSourceFile(name, source, version, true)
      : getSourceFile(name, version, onError, create);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? source : readFile(name));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const here = d.file?.fileName === file && d.start !== undefined;
    return {
      line: here ? d.file?.getLineAndCharacterOfPosition(d.start as number).line : undefined,
      fileName: here ? undefined : d.file?.fileName,
      message: ts.flattenDiagnosticMessageText(d.messageText, "\n"),
    };
  });
}
