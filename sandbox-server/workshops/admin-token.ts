// Creates another instructor token: its SHA-256 is appended to <state>/admin-tokens (a running server
// picks it up at once) and the token is printed this one time.
//   npm run admin-token -- [label]
// To revoke a token, delete its line from the file.
import { stateDir } from '../../runtime/bootstrap/engine.ts';
import { addAdminToken, TOKENS_FILE } from './admin-auth.ts';

const dir = stateDir(process.env);
const label = process.argv[2] ?? '';
if (label && !/^[\w.@-]{1,60}$/.test(label)) {
  console.error('The label may hold letters, digits and . _ @ - (at most 60).');
  process.exit(2);
}
const token = addAdminToken(dir, label);
console.log(`New instructor token (shown only now; its hash is in ${dir}/${TOKENS_FILE}):\n${token}`);
