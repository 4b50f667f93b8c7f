// The host page server: a different origin from classchat, as on a real course site.
// Serves end2end/host/*.html with {{SERVER}} replaced by the classchat server's URL (and
// for the pages in POLICIES, that Content-Security-Policy header).
//
// Used by global-setup.ts; also runs alone for poking at the widget by hand:
//   node host/serve.js --server http://127.0.0.1:8080 [--port 8081]
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const DIR = __dirname;

/** The CSP each strict page is served with ({{SERVER}}: classchat's origin). */
const POLICIES = {
  // May load our script but not compile WebAssembly, nor use inline style.
  'csp-strict.html': "script-src 'self' {{SERVER}}; style-src 'self'",
  // May compile WebAssembly: the widget runs inline (still no inline style).
  'csp-wasm.html': "script-src 'self' {{SERVER}} 'wasm-unsafe-eval'; style-src 'self'",
  // Allows the loader file alone (a path-exact source): the glue import is refused.
  'csp-loader-only.html': "script-src 'self' {{SERVER}}/widget.js 'wasm-unsafe-eval'; style-src 'self'",
};

/** Starts the server on 127.0.0.1:`port` (0: any free port); resolves `{ server, url }`.
 *  `serverUrl`: a string, or a function giving it (read on each request). */
function startHostServer(serverUrl, port = 0) {
  const serverOf = typeof serverUrl === 'function' ? serverUrl : () => serverUrl;
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://host');
    if (pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const name = pathname === '/' ? 'index.html' : pathname.slice(1);
    if (!/^[\w-]+\.html$/.test(name) || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    fs.readFile(path.join(DIR, name), 'utf8', (err, text) => {
      if (err) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      const headers = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' };
      if (POLICIES[name]) headers['content-security-policy'] = POLICIES[name].replaceAll('{{SERVER}}', serverOf());
      res.writeHead(200, headers).end(text.replaceAll('{{SERVER}}', serverOf()));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({ server, url: `http://127.0.0.1:${server.address().port}` });
    });
  });
}

module.exports = { startHostServer };

if (require.main === module) {
  const arg = (flag, dflt) => {
    const i = process.argv.indexOf(flag);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  startHostServer(arg('--server', 'http://127.0.0.1:8080'), Number(arg('--port', '0'))).then(({ url }) =>
    console.log(`host page on ${url}`),
  );
}
