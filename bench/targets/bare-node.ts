// Baseline: a bare node:http server answering one small JSON body. "READY <url>" on stderr.
import http from 'node:http';

const body = JSON.stringify({ id: '01HZX0000000000000000000', email: 'bench@example.com', mfaEnabled: true });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as import('node:net').AddressInfo;
  process.stderr.write(`READY http://127.0.0.1:${address.port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
