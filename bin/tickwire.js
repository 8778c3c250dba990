#!/usr/bin/env node
// The one `tickwire` command. The project is TypeScript run through tsx; register its loader, then hand over.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
