// `smolvlm serve` on the tiny model for the Node tests (the web page's and the OpenAI SDK's).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const cli = process.env.SMOLVLM_BIN || path.join(root, 'build-release/smolvlm');
export const model = path.join(root, 'tests/fixtures/tiny-smolvlm2');

// Starts `smolvlm serve` on a free port; resolves once it says "ready on URL". One thread: the
// answers are those of `ask -t 1`, and a pool of two on a busy CI machine (whose other core is
// taken) runs many times slower.
export function serve(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(cli, ['serve', '-m', model, '--port', '0', '-t', '1', ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 30000);
    const onData = (d) => {
      out += d;
      const m = out.match(/ready on (http:\/\/[0-9.]+:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`serve exited (${code}):\n${out}`)));
  });
}

// Stops a server started by serve() (SIGTERM: a graceful stop) and waits for it to exit.
export function stopServer(server) {
  if (!server || server.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    server.child.once('exit', resolve);
    server.child.kill('SIGTERM');
  });
}
