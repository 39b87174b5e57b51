// The release version and the commit it was built from: --version, INFO and the start-up log.
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;

// `make build` and `make release` replace this name with the commit (bun build --define).
declare const PREDIXY_COMMIT: string | undefined;

/** The commit the executable was built from ("unknown" outside a git checkout); "" when run from source. */
export const BUILD_COMMIT: string = typeof PREDIXY_COMMIT === "string" ? PREDIXY_COMMIT : "";

/** What `--version` prints. From source, git is asked then (never at start-up, which tests do often). */
export function versionLine(): string {
  return BUILD_COMMIT !== ""
    ? `predixy ${VERSION} (commit ${BUILD_COMMIT})\n`
    : `predixy ${VERSION} (from source, commit ${sourceCommit()})\n`;
}

/** The same command as the Makefile's: the abbreviated commit, `-dirty` if tracked files changed. */
function sourceCommit(): string {
  try {
    const git = Bun.spawnSync(["git", "describe", "--always", "--dirty", "--abbrev=12", "--exclude=*"], {
      cwd: import.meta.dir, stdout: "pipe", stderr: "ignore",
    });
    const out = git.stdout.toString().trim();
    return git.exitCode === 0 && out !== "" ? out : "unknown";
  } catch {
    return "unknown"; // no git on this machine
  }
}
