/**
 * The `shm-cache` CLI's argument parsing: one spec per command, parsed
 * strictly (`node:util` `parseArgs`, in both runtimes), so that any unknown
 * option or missing argument is a {@linkcode UsageError} (exit code 2).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Bad usage: the CLI prints the message and the command's usage, exits 2. */
export class UsageError extends Error {
  /** Creates the error; `message` says what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option of a command. */
export interface OptionSpec {
  type: "boolean" | "string";
  /** The value's name in the help, for string options. */
  value?: string;
  description: string;
}

/** A command: its arguments, options and help. */
export interface CommandSpec {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional argument names; a trailing `...` takes one or more. */
  args: string[];
  options: Record<string, OptionSpec>;
  /** Paragraphs after the usage line. */
  details: string;
}

/** What `parse` returns: the option values and the positional arguments. */
export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  args: string[];
}

/** Parses `argv` (after the command name) by `spec`; `--help` is every command's. */
export function parse(spec: CommandSpec, argv: string[]): Parsed & { help: boolean } {
  const options: Record<string, { type: "boolean" | "string"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(spec.options)) options[name] = { type: o.type };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) return { values, args: parsed.positionals, help: true };
  const args = parsed.positionals;
  const variadic = spec.args.at(-1)?.endsWith("...") ?? false;
  const min = spec.args.length;
  if (args.length < min) {
    throw new UsageError(`missing ${spec.args.slice(args.length).join(" ")}`);
  }
  if (!variadic && args.length > min) {
    throw new UsageError(`unexpected argument ${JSON.stringify(args[min])}`);
  }
  return { values, args, help: false };
}

/** The command's help text. */
export function usage(spec: CommandSpec): string {
  const opts = Object.entries(spec.options).map(([name, o]) =>
    `  --${name}${o.value ? ` ${o.value}` : ""}`.padEnd(22) + o.description
  );
  opts.push("  -h, --help".padEnd(22) + "show this help");
  return [
    `usage: shm-cache ${spec.name} ${spec.args.join(" ")} [options]`.replace(/ +\[/, " ["),
    "",
    spec.summary,
    ...(spec.details ? ["", spec.details] : []),
    "",
    "options:",
    ...opts,
  ].join("\n");
}
