// Prints a measured figure under the running test (mocha's spec layout), for tests that are
// asked to show what they measured as well as to assert a bound on it.
export function report(line: string): void {
  process.stdout.write(`      ${line}\n`);
}
