// The runtime bring-up used by `npm start` and the tests: engine, image catalog, registry mirror,
// learner engine image, and Incus with the learner node image where the host can run it. Idempotent;
// prints what each step took.
import { ensureEngine, EngineError } from './bootstrap/engine.ts';
import { ensurePackages, RUNTIME_PACKAGES } from './bootstrap/host-packages.ts';
import { buildEngineImage } from './engine/build.ts';
import { buildCatalog } from './images/build.ts';
import { IncusError } from './incus/errors.ts';
import { ensureIncus, incusSkipReason } from './incus/up.ts';
import { MirrorError, pushCatalog, startMirror } from './mirror/mirror.ts';

export async function runtimeUp(log: (m: string) => void = (m) => console.error(`[runtime] ${m}`)) {
  const step = async <T>(name: string, f: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    log(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return r;
  };
  await step('host packages', () => ensurePackages(RUNTIME_PACKAGES, log));
  const engine = await step('engine', () => ensureEngine({ log }));
  const results = await step('image catalog', () => buildCatalog({ host: engine.host, log }));
  const failed = results.filter((r) => r.status === 'failed');
  if (failed.length) throw new Error(`These catalog images failed to build: ${failed.map((f) => `${f.name} (${f.error?.split('\n')[0]})`).join('; ')}`);
  const port = await step('registry mirror', () =>
    startMirror({ host: engine.host, port: Number(process.env.BERTH_MIRROR_PORT ?? 5000), upstream: process.env.BERTH_MIRROR_UPSTREAM, log }),
  );
  await step('mirror contents', () => pushCatalog({ host: engine.host, port, log }));
  await step('learner engine image', () => buildEngineImage(engine.host, log));
  // Incus after the host engine: its bridges must come up next to Docker's chains, not before them.
  const skip = incusSkipReason();
  if (skip) log(`incus: skipped (${skip}); learner nodes use the rootless Docker provider`);
  else {
    try {
      await ensureIncus({ log, step });
    } catch (err) {
      // Fatal on purpose (nodes would fail later, less clearly), with the way out named.
      if (err instanceof IncusError) err.message += '\n(BERTH_INCUS=0 skips Incus; learner nodes then use the rootless Docker provider.)';
      throw err;
    }
  }
  return engine;
}

if (import.meta.main) {
  try {
    const t0 = performance.now();
    await runtimeUp();
    console.error(`[runtime] ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    if (err instanceof EngineError || err instanceof MirrorError || err instanceof IncusError || err instanceof Error) {
      console.error(`[runtime] ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}
