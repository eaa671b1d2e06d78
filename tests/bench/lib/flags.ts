// Command-line flags of `npm run bench`. Every count is a flag so that a quick run is one option away.
import { parseArgs } from 'node:util';
import { PROVIDERS, type ProviderName } from '../../helpers/provider-nodes.ts';

export const SECTIONS = ['ready', 'density', 'terminal', 'pulls', 'burst', 'site', 'preview'] as const;
export type Section = (typeof SECTIONS)[number];

export type Flags = {
  sections: Section[];
  runs: number; // ready time: runs per variant (warm, cold, 3-node) and of the baseline
  pool: number; // warm pool size for the warm variant
  ceiling: number; // density: most idle sandboxes to start
  workload: number; // density: sandboxes running the lesson workload at once
  keys: number; // terminal: keystrokes per echo measurement
  echoRounds: number; // terminal: interleaved rounds the keystrokes are split into, every transport in each
  bulkMb: number; // terminal: megabytes of output per throughput measurement
  images: string[]; // pulls: catalog images to pull
  pullRounds: number; // pulls: cold pulls of each image, in the sandbox and on the host's Docker in turn
  peer: boolean; // terminal: measure shellinabox as a peer (installs it with apt when missing)
  learners: number; // burst: learners joining a pre-warmed workshop
  spreadS: number; // burst: seconds over which they join
  previews: number; // preview: GETs of a page per path (direct, relayed)
  out: string; // results file name (without extension) under tests/bench/results/
  provider: ProviderName; // where the sandboxes run
};

const HELP = `npm run bench -- [options]
  --quick            tiny counts (3 runs, 4 sandboxes, 100 keys, 5 MB, 3 learners); writes results/quick.*
  --only LIST        sections to run: ${SECTIONS.join(',')} (default: all)
  --runs N           ready time: runs per variant (30)
  --pool N           ready time: warm pool size (2)
  --ceiling N        density: idle sandboxes to start at most (40)
  --workload N       density: sandboxes running the lesson workload at once (10)
  --keys N           terminal: keystrokes per echo measurement (1000)
  --echo-rounds N    terminal: the keys in N rounds, each transport in turn in every round (5)
  --bulk-mb N        terminal: megabytes of output per throughput measurement (100)
  --images LIST      pulls: catalog images (nginx,redis,python)
  --pull-rounds N    pulls: cold pulls of each image, sandbox and host's Docker in turn; medians (3)
  --no-peer          terminal: skip the shellinabox peer
  --learners N       burst: learners joining a pre-warmed workshop (30)
  --spread-s N       burst: seconds over which they join (10)
  --previews N       preview: GETs of a page through each path, direct and relayed (200; Incus only)
  --out NAME         results/NAME.json and results/NAME.md (latest; quick with --quick)
  --provider NAME    where the sandboxes run: ${PROVIDERS.join(' or ')} (docker); baselines stay the host engine's`;

export function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      runs: { type: 'string' },
      pool: { type: 'string' },
      ceiling: { type: 'string' },
      workload: { type: 'string' },
      keys: { type: 'string' },
      'echo-rounds': { type: 'string' },
      'bulk-mb': { type: 'string' },
      images: { type: 'string' },
      'pull-rounds': { type: 'string' },
      'no-peer': { type: 'boolean' },
      learners: { type: 'string' },
      'spread-s': { type: 'string' },
      previews: { type: 'string' },
      out: { type: 'string' },
      provider: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const q = !!values.quick;
  const int = (name: string, v: string | undefined, def: number, min: number) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} wants a whole number ≥ ${min}, not ${JSON.stringify(v)}\n\n${HELP}`);
    return n;
  };
  const sections = values.only ? values.only.split(',').map((s) => s.trim()) : [...SECTIONS];
  for (const s of sections) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section ${s}\n\n${HELP}`);
  const workload = int('workload', values.workload, q ? 2 : 10, 1);
  const provider = values.provider ?? 'docker';
  if (!(PROVIDERS as readonly string[]).includes(provider)) throw new Error(`--provider: ${provider} is not one of ${PROVIDERS.join(', ')}\n\n${HELP}`);
  return {
    sections: sections as Section[],
    runs: int('runs', values.runs, q ? 3 : 30, 1),
    pool: int('pool', values.pool, 2, 1),
    ceiling: Math.max(int('ceiling', values.ceiling, q ? 4 : 40, 2), workload + 1),
    workload,
    keys: int('keys', values.keys, q ? 100 : 1000, 10),
    echoRounds: int('echo-rounds', values['echo-rounds'], q ? 2 : 5, 1),
    bulkMb: int('bulk-mb', values['bulk-mb'], q ? 5 : 100, 1),
    images: (values.images ?? (q ? 'busybox' : 'nginx,redis,python'))
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    pullRounds: int('pull-rounds', values['pull-rounds'], q ? 1 : 3, 1),
    peer: !values['no-peer'],
    learners: int('learners', values.learners, q ? 3 : 30, 1),
    spreadS: int('spread-s', values['spread-s'], q ? 1 : 10, 0),
    previews: int('previews', values.previews, q ? 10 : 200, 5),
    out: values.out ?? (q ? 'quick' : 'latest'),
    provider: provider as ProviderName,
  };
}
