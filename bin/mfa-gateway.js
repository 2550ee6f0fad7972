#!/usr/bin/env node
// Entry for `npx mfa-gateway` and `npm start`: the sources are TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
