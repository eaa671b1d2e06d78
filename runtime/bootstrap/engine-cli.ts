// `npm run runtime:engine`: finds or starts the host engine and prints DOCKER_HOST=...
import { ensureEngine, EngineError } from './engine.ts';

try {
  const t0 = performance.now();
  const engine = await ensureEngine({ log: (m) => console.error(`[engine] ${m}`) });
  console.error(`[engine] ready in ${Math.round(performance.now() - t0)} ms (${engine.startedByBerth ? 'started by Berth' : 'existing engine'})`);
  console.log(`DOCKER_HOST=${engine.host}`);
} catch (err) {
  if (err instanceof EngineError) {
    console.error(`[engine] ${err.code}: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
