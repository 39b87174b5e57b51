// The release version, reported by --version, INFO and the start-up log: package.json's, bundled in.
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
