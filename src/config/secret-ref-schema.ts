import { z } from 'zod';

/** `{file: path}` (optionally `generate: true` to create a random secret on first start) or `{env: NAME}`. */
export const secretRefSchema = z.union([
  z.strictObject({
    file: z.string().min(1),
    generate: z.boolean().default(false),
  }),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name') }),
]);
export type SecretRef = z.infer<typeof secretRefSchema>;
