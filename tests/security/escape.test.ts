// The escape suite on the Docker provider (rootless engines in host engine containers): see escape-suite.ts.
import { escapeSuite } from './escape-suite.ts';

escapeSuite({ settings: { BERTH_PROVIDER: 'docker' } });
