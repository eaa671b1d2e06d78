// The recent output of each terminal tab, replayed on reconnect so a reload shows the same screen.
export class History {
  max: number;
  maxTabs: number;
  tabs = new Map<string, Buffer[]>();
  sizes = new Map<string, number>();

  constructor(max = 64 * 1024, maxTabs = 5000) {
    this.max = max;
    this.maxTabs = maxTabs;
  }

  append(key: string, chunk: Buffer) {
    let list = this.tabs.get(key);
    if (!list) {
      list = [];
      this.tabs.set(key, list);
      // Oldest tabs go first when too many are remembered; their shells still live, only the replay is lost.
      if (this.tabs.size > this.maxTabs) this.forget(this.tabs.keys().next().value!);
    }
    list.push(chunk);
    let size = (this.sizes.get(key) ?? 0) + chunk.length;
    // Whole chunks go only while the rest still covers max bytes; replay() trims the excess.
    while (list.length > 1 && size - list[0].length >= this.max) size -= list.shift()!.length;
    this.sizes.set(key, size);
  }

  replay(key: string): Buffer {
    const b = Buffer.concat(this.tabs.get(key) ?? []);
    return b.length > this.max ? b.subarray(b.length - this.max) : b;
  }

  forget(key: string) {
    this.tabs.delete(key);
    this.sizes.delete(key);
  }

  forgetSession(id: string) {
    for (const k of [...this.tabs.keys()]) if (k.startsWith(`${id}/`)) this.forget(k);
  }
}
