import { readFileSync } from 'node:fs';
import { parseSiteYaml } from '../core/index.ts';
import type { Site } from '../core/index.ts';

/** Reads and validates a site file; throws SiteFileError (with paths and lines) or a clear I/O error. */
export function loadSiteFile(path: string): Site {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read site file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseSiteYaml(text, path);
}
