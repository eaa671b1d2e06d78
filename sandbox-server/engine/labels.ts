// Labels mark every object Berth creates on the host engine, so a restarted server can find them.
export const LABEL = {
  managed: 'berth.managed',
  sandbox: 'berth.sandbox',
  node: 'berth.node',
  role: 'berth.role',
  instance: 'berth.instance',
  /** The node's block of host ids (node-spec.ts), unique among all nodes on the engine. */
  idBlock: 'berth.id-block',
} as const;

export const sandboxFilter = (instance: string) => ({ label: [`${LABEL.managed}=1`, `${LABEL.role}=node`, `${LABEL.instance}=${instance}`] });
export const networkFilter = (instance: string) => ({ label: [`${LABEL.managed}=1`, `${LABEL.role}=sandbox-net`, `${LABEL.instance}=${instance}`] });
