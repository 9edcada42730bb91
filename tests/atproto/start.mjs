// Boots a local AT Protocol network (PLC, PDS, AppView) for socialcare's Bluesky tests.
//
// Environment: DB_POSTGRES_URL (a database this network may fill; the caller creates and drops
// it), REDIS_HOST (host:port). Accounts are made by the caller through the PDS's createAccount
// (handles ending in .test), so each test can have its own.
//
// Prints one JSON line on stdout once every service is up:
//   {"ready": true, "pds": URL, "appview": URL, "plc": URL, "control": URL, "startSeconds": N}
// The control server answers POST /sync (wait until the AppView has indexed everything the
// PDS has sequenced, so a poll that follows sees it) and POST /stop. The network also stops on
// SIGTERM, SIGINT, or when stdin closes (the parent process went away).
import http from 'node:http'
import { TestNetwork } from '@atproto/dev-env'

const started = Date.now()
const log = (...args) => console.error('[atproto-testnet]', ...args)

const schema = process.env.DB_POSTGRES_SCHEMA || 'socialcare'
const network = await TestNetwork.create({
  dbPostgresUrl: process.env.DB_POSTGRES_URL,
  dbPostgresSchema: schema,
})

await network.processAll()

let stopping = null
const stop = (why) => {
  if (stopping) return stopping
  log(`stopping (${why})`)
  stopping = (async () => {
    control.close()
    try {
      await network.close()
    } catch (err) {
      log('close failed:', err?.message || err)
      process.exitCode = 1
    }
    process.exit()
  })()
  return stopping
}

const control = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/sync') {
      await network.processAll(10000)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"synced":true}')
    } else if (req.method === 'POST' && req.url === '/stop') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"stopping":true}')
      void stop('control')
    } else {
      res.writeHead(404).end()
    }
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err?.stack || err))
  }
})
await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve))

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => void stop(signal))
process.stdin.on('end', () => void stop('stdin closed'))
process.stdin.resume()

console.log(
  JSON.stringify({
    ready: true,
    pds: network.pds.url,
    appview: network.bsky.url,
    plc: network.plc.url,
    control: `http://127.0.0.1:${control.address().port}`,
    startSeconds: (Date.now() - started) / 1000,
  }),
)
