// npx tsx examples/oidc-rp/main.ts, with the client registered at Gatehouse (README.md).
import { createRp } from './app.js';

const e = process.env;
const baseUrl = e.RP_BASE_URL ?? 'http://localhost:4000';
const rp = await createRp({ issuer: e.RP_ISSUER!, clientId: e.RP_CLIENT_ID!, clientSecret: e.RP_CLIENT_SECRET!, baseUrl, api: e.RP_API! });
await rp.listen({ port: Number(new URL(baseUrl).port) });
