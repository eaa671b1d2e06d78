// Diagrams and images a lesson's markdown links to, copied beside its page so relative links work.
import type { APIRoute } from 'astro';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lessons, lessonsDir } from '../../../lib/catalog.ts';

export function getStaticPaths() {
  return lessons().flatMap((l) => l.assets.map((asset) => ({ params: { id: l.id, asset } })));
}

export const GET: APIRoute = ({ params }) => new Response(readFileSync(join(lessonsDir(), params.id!, params.asset!)));
