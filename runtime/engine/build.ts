// Builds the learner engine image when its recipe or its base changed; otherwise returns at once.
import { hashDir } from '../images/build.ts';
import { docker, imageId, imageLabel } from '../images/docker-cli.ts';

export const ENGINE_IMAGE = 'berth/engine:latest';
const BASE = 'debian:bookworm';

export async function buildEngineImage(host: string, log: (m: string) => void = () => {}): Promise<{ built: boolean }> {
  const baseId = imageId(host, BASE);
  if (!baseId) throw new Error(`The learner engine image needs the catalog's ${BASE} image first (npm run runtime:images).`);
  const recipe = hashDir(import.meta.dirname, baseId);
  if (imageLabel(host, ENGINE_IMAGE, 'berth.recipe') === recipe) return { built: false };
  log(`building ${ENGINE_IMAGE} (recipe ${recipe})`);
  const r = await docker(host, [
    'build',
    '-q',
    '--force-rm',
    '--build-arg',
    `BASE=${BASE}`,
    '--label',
    `berth.recipe=${recipe}`,
    '-t',
    ENGINE_IMAGE,
    import.meta.dirname,
  ]);
  if (r.code !== 0) throw new Error(`Building ${ENGINE_IMAGE} from runtime/engine/Dockerfile failed:\n${r.tail.trim().split('\n').slice(-15).join('\n')}`);
  return { built: true };
}
