import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import type { Node } from 'yaml';
import type { SiteIssue } from './errors.ts';
import { formatPath, SiteFileError } from './errors.ts';
import type { Site } from './model.ts';
import { siteFileSchema } from './schema.ts';
import { fileIndexPath, fileIndexText, salvage } from './salvage.ts';
import { buildSite } from './validate.ts';

/**
 * Parses and validates a site file's text. Pure: the caller reads the file. Throws
 * SiteFileError listing every problem with its key path and line.
 */
export function parseSiteYaml(text: string, source = 'site.yaml'): Site {
  const lineCounter = new LineCounter();
  // YAML 1.2 core schema: unquoted 2026-01-01 stays a string, never a timestamp.
  // prettyErrors: the yaml library fills an error's linePos only with it on.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, schema: 'core' });
  if (doc.errors.length > 0) {
    throw new SiteFileError(
      source,
      doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''), line: e.linePos?.[0]?.line })),
    );
  }
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = nodeAt(doc.contents as Node | null, path.slice(0, n));
      if (node?.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  exactRegisters(doc);
  let data: unknown;
  try {
    // A few aliases are fine; a "billion laughs" document expands exponentially.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    if (err instanceof ReferenceError) throw new SiteFileError(source, [{ path: '', message: `too many YAML aliases (${err.message}); write the values out instead of nesting aliases` }]);
    throw err;
  }
  const parsed = siteFileSchema.safeParse(data ?? {});
  if (!parsed.success) {
    const issues: SiteIssue[] = parsed.error.issues.map((i) => {
      const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]] : i.path;
      const message = i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}` : i.message;
      return { path: formatPath(path), message, line: lineOf(path) };
    });
    // The schema's problems must not hide the others: check what passed it as well.
    const s = salvage(data);
    const more = buildSite(s.file, { known: s.known, metersIncomplete: s.metersIncomplete }).issues.map((i) => {
      const path = fileIndexPath(s, i.path);
      return { path: formatPath(path), message: fileIndexText(s, i.message), line: lineOf(path) };
    });
    throw new SiteFileError(source, [...issues, ...more].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  }
  const { site, issues } = buildSite(parsed.data);
  if (!site) throw new SiteFileError(source, issues.map((i) => ({ path: formatPath(i.path), message: i.message, line: lineOf(i.path) })));
  return site;
}

function nodeAt(root: Node | null, path: readonly PropertyKey[]): Node | undefined {
  let node: unknown = root;
  for (const key of path) {
    if (isMap(node)) node = node.get(key as string, true);
    else if (isSeq(node)) node = node.get(key as number, true);
    else return undefined;
  }
  return (node ?? undefined) as Node | undefined;
}

/** Keys whose numbers are register readings, read exactly from their text (billing.md section 11). */
const EXACT_KEYS = new Set(['final_kwh', 'initial_kwh']);

/**
 * A YAML number becomes a binary float in toJS; a register of 10 digits and 3 decimals
 * may not survive that. These keys get the number's source text instead, which the
 * schema reads as a decimal.
 */
function exactRegisters(doc: ReturnType<typeof parseDocument>): void {
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && EXACT_KEYS.has(String(pair.key.value)) && isScalar(pair.value) && typeof pair.value.value === 'number' && pair.value.source !== undefined) {
        pair.value.value = pair.value.source;
      }
    },
  });
}
