// The release version, reported by --version, INFO and the start-up log.
export const VERSION = "0.1.0";
