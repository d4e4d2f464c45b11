/** Thrown by commands to end with a given exit code and message (1 failure, 2 usage/config). */
export class CliExit extends Error {
  override readonly name = 'CliExit';
  constructor(
    readonly exitCode: 0 | 1 | 2,
    message = '',
  ) {
    super(message);
  }
}
