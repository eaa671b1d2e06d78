// How the e2e suites start Debian's Chromium (Playwright's own browser download cannot work here): headless,
// without its sandbox (the tests run as root), and with nothing that would call out of this machine.
export const CHROMIUM = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};
