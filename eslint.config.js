// Lint: ESLint's and typescript-eslint's recommended rules, with type information. Formatting is Prettier's.
// And the layers (README, "Layout"): which folder may import which, checked on every import.
import { dirname, relative, resolve } from "node:path";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The layers, lowest first. A file in a folder may import its own folder (and below), the folders and
 * modules listed here, and npm packages; nothing else of the project. An entry ending in "/" is a
 * folder, one without is a single module (no extension). Files in no listed folder (test/, config
 * files) may import anything. No production folder lists test/: only tests import test fixtures.
 */
const LAYERS = {
  // Pure signal logic: no clock, no I/O, no packages (not even node:), nothing outside itself.
  "gateway/core/": [],
  // Hardware: only the core's model (groups, lamps) and its Issue type (located configuration errors).
  "devices/": ["gateway/core/model", "gateway/core/issues"],
  "gateway/config/": ["gateway/core/", "devices/"],
  "gateway/protocol/": ["gateway/core/", "gateway/config/"],
  "gateway/store/": ["gateway/core/"],
  // Runs the core's machines with real timers and carries out their effects, in the wire's terms.
  "gateway/shell/": ["gateway/core/", "gateway/protocol/"],
  // Installed releases: health-gated activation, rollback, backups of the stores (docs/upgrades.md).
  // Reads the store's files and latch with the store's own rules, never through a running gateway.
  "gateway/release/": ["gateway/core/", "gateway/store/"],
  "gateway/broker/": ["gateway/config/", "gateway/protocol/", "gateway/core/"],
  "gateway/console/": ["gateway/core/", "gateway/config/", "gateway/protocol/"],
  "gateway/node/": [
    "gateway/core/",
    "gateway/config/",
    "gateway/protocol/",
    "gateway/shell/",
    "gateway/store/",
    "devices/",
  ],
  // The operator's side talks to gateways over the wire: it does not reach into a gateway (node/).
  "gateway/operator/": [
    "gateway/core/",
    "gateway/config/",
    "gateway/protocol/",
    "gateway/shell/",
    "gateway/store/",
  ],
  // `greenwave doctor`'s checks: shell-level, they read config, devices, store and the shell's tools.
  "gateway/doctor/": [
    "gateway/core/",
    "gateway/config/",
    "gateway/protocol/",
    "gateway/shell/",
    "gateway/store/",
    "devices/",
  ],
  "gateway/cli/": ["gateway/", "devices/", "simulators/"],
  // Simulators and fixtures run the gateway's own code, never the command line's.
  "simulators/": [
    "gateway/core/",
    "gateway/config/",
    "gateway/protocol/",
    "gateway/shell/",
    "gateway/store/",
    "gateway/node/",
    "devices/",
  ],
  "bench/": ["gateway/", "devices/", "simulators/"],
  // The package build: a shell of its own at the top. It runs tools (npm, node-gyp, tar, dpkg-deb), not the
  // gateway; of the gateway it needs only the store's schema version, for release.json, and the pid files.
  "packaging/": ["gateway/store/migrations", "gateway/store/pid-file"],
};

/**
 * Imports that break the layers, each with the issue that removes it: file → imported module. Empty:
 * the last one (plan-push → node/coordinator-host) went when the coordinator interpreter moved to shell/.
 */
const KNOWN_EXCEPTIONS = [];

const root = import.meta.dirname;
const owner = (file) => Object.keys(LAYERS).find((layer) => file.startsWith(layer)) ?? null;
const within = (target, entry) => (entry.endsWith("/") ? target.startsWith(entry) : target === entry);

const layersRule = {
  meta: {
    type: "problem",
    docs: { description: "imports follow the layers of eslint.config.js (README, Layout)" },
    schema: [],
  },
  create(context) {
    const file = relative(root, context.filename).split("\\").join("/");
    const layer = owner(file);
    if (layer === null) return {};
    const check = (node, specifier) => {
      if (typeof specifier !== "string") return;
      if (!specifier.startsWith(".")) {
        if (layer === "gateway/core/")
          context.report({
            node,
            message: `${file} imports "${specifier}": gateway/core/ is pure and imports no package`,
          });
        return;
      }
      const target = relative(root, resolve(dirname(context.filename), specifier))
        .split("\\")
        .join("/")
        .replace(/\.(js|ts|mjs|cjs)$/, "");
      if (target.startsWith(layer)) return;
      if (LAYERS[layer].some((entry) => within(target, entry))) return;
      if (KNOWN_EXCEPTIONS.some((e) => e.file === file && e.imports === target)) return;
      const allowed =
        LAYERS[layer].length === 0 ? "nothing outside itself" : `only ${LAYERS[layer].join(", ")}`;
      context.report({
        node,
        message: `${file} may not import ${target}: ${layer} may import ${allowed} (layers: eslint.config.js, README "Layout")`,
      });
    };
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) => node.source.type === "Literal" && check(node.source, node.source.value),
    };
  },
};

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bench/results/", "dist-package/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { greenwave: { rules: { layers: layersRule } } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
      "greenwave/layers": "error",
    },
  },
);
