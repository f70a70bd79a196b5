// M³ 25+'s watch-folder watcher (src-electron/main/fs.ts, watchFolder, M³ 26.8), reduced to its
// chokidar options and its filter, printing every event as one JSON line for the Python test.
// Usage: node watch.mjs FOLDER [poll]   ("poll": M³'s settings for a network path)
import { watch } from 'chokidar';
import { basename, dirname } from 'node:path';

const folder = process.argv[2];
const poll = process.argv[3] === 'poll';
const datePattern = /^\d{4}-\d{2}-\d{2}$/;

const watcher = watch(folder, {
  atomic: false,
  awaitWriteFinish: true,
  ignored: (fp, stats) => {
    if (fp === folder) return false;
    if (!stats) return false;
    const dirPath = stats.isDirectory() ? fp : dirname(fp);
    return !datePattern.test(basename(dirPath));
  },
  ignorePermissionErrors: true,
  interval: poll ? 1000 : undefined,
  usePolling: poll,
});

watcher
  .on('all', (event, changedPath, stats) => {
    if (!changedPath || (!stats && !event.includes('unlink'))) return; // M³ drops these too
    const size = stats ? stats.size : null;
    process.stdout.write(JSON.stringify({ event, path: changedPath, size, t: Date.now() }) + '\n');
  })
  .on('ready', () => process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n'))
  .on('error', (e) => process.stdout.write(JSON.stringify({ event: 'error', message: String(e) }) + '\n'));
