import { HailuoError } from "@hailuo/shared";

/** The assembled film does not match the plan, or the plan cannot be followed. */
export class AssembleError extends HailuoError {
  constructor(message: string) {
    super("assemble_failed", message, { retryable: false });
  }
}
