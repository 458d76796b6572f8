import type { Site } from '../core/index.ts';
import { loadSiteFile } from '../lib/site-file.ts';

/**
 * The site the API serves, swappable at run time by a manager's reload. A reload reads
 * and validates the whole file first (SiteFileError lists every problem with its path and
 * line) and swaps only a valid site of the same id, so a bad edit never takes the API down.
 */
export class SiteRef {
  private site: Site;
  constructor(
    site: Site,
    /** The file a reload reads; undefined when the site came from elsewhere (tests). */
    readonly file?: string,
  ) {
    this.site = site;
  }

  get current(): Site {
    return this.site;
  }

  /** Throws SiteFileError (invalid), a plain Error (unreadable, no file) or SiteMismatchError. */
  reload(): Site {
    if (!this.file) throw new Error('this API was started without a site file; nothing to reload');
    const next = loadSiteFile(this.file);
    if (next.id !== this.site.id) throw new SiteMismatchError(`the site file is now site ${next.id}, not ${this.site.id}; restart the API to serve another site`);
    this.site = next;
    return next;
  }
}

export class SiteMismatchError extends Error {
  override readonly name = 'SiteMismatchError';
}
