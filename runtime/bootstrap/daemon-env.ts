// The environment for long-lived system daemons Berth starts (dockerd, lxcfs, incusd). Under `npm run`/
// `npm test`, PATH begins with node_modules/.bin, where npm packages put commands that share names with
// system tools: @vercel/nft (Astro's) installs `nft`, and incusd, finding it before /usr/sbin/nft, read its
// output as nftables' version and panicked at start. Daemons get the PATH without those entries.
import { delimiter } from 'node:path';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function daemonEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept = (env.PATH ?? '').split(delimiter).filter((p) => p && !/[\\/]node_modules[\\/]\.bin[\\/]?$/.test(p) && !/[\\/]node-gyp-bin[\\/]?$/.test(p));
  // Sure of the system directories even when the caller's PATH lacked them (sbin is often missing for root via su).
  for (const dir of SYSTEM_PATH.split(':')) if (!kept.includes(dir)) kept.push(dir);
  return { ...env, PATH: kept.join(delimiter) };
}
