import { HailuoError, formatProblem, type FieldProblem } from "@hailuo/shared";

/** A manifest failed to parse or validate; lists every problem with file, line and field. */
export class ManifestError extends HailuoError {
  readonly problems: FieldProblem[];
  constructor(file: string, problems: FieldProblem[]) {
    const n = problems.length;
    super(
      "manifest",
      `${file}: ${n} problem${n === 1 ? "" : "s"}:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`,
      {
        retryable: false,
        details: { problems },
      },
    );
    this.problems = problems;
  }
}
