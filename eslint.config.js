import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "charts/**", "k8s/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "no-console": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // Type-aware rules: every promise is awaited, handled or explicitly let go (STYLE §2.18).
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
  {
    // Commands and scripts print to their users; fault and load tests print what they counted.
    files: [
      "services/cli/**/*.ts",
      "services/bench/**/*.ts",
      "bench/**/*.ts",
      "test/**/*.ts",
      "scripts/**/*.ts",
    ],
    rules: { "no-console": "off" },
  },
);
