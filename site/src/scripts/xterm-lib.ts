// The terminal libraries, loaded as one chunk when a sandbox starts (they are not needed before).
export { Terminal } from '@xterm/xterm';
export { FitAddon } from '@xterm/addon-fit';
export { WebLinksAddon } from '@xterm/addon-web-links';
