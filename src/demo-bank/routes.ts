/**
 * The demo bank: the protected application, written the way a user's app would be, only
 * against Gatehouse's public API (`requires`, `userIdOf`, `parse`).
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { parse, requires, userIdOf } from '../index.js';
import { DemoBankStore } from './store.js';

const TransferBody = z
  .object({
    to: z.string().trim().min(1).max(64),
    amountCents: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    memo: z.string().max(140).optional(),
  })
  .strict();

export interface DemoBankOptions {
  /** Where the demo keeps its ledger (the server hands it the database Gatehouse uses). */
  db: Kysely<any>;
  /** Transfers at or above this need a fresh factor (GATEHOUSE_TRANSFER_STEP_UP_CENTS). */
  transferStepUpCents: number;
}

async function demoBank(app: FastifyInstance, { db, transferStepUpCents }: DemoBankOptions): Promise<void> {
  const store = new DemoBankStore(db);
  await store.migrate();
  const threshold = transferStepUpCents;

  app.get('/api/account/transactions', { config: requires({ session: 'full', scope: 'transactions:read' }) }, async (request) => ({
    transactions: await store.list(userIdOf(request)),
  }));

  app.post(
    '/api/transfers',
    {
      config: requires({
        session: 'full',
        scope: 'transfers:write',
        // Large transfers are sensitive actions: they need a fresh second factor. A
        // non-numeric amount cannot pass validation, so it need not be fresh to be refused.
        fresh: (request) => {
          const amount = (request.body as { amountCents?: unknown } | null)?.amountCents;
          return typeof amount === 'number' && amount >= threshold;
        },
      }),
    },
    async (request, reply) => {
      const body = parse(TransferBody, request.body);
      const id = await store.transfer(userIdOf(request), body.to, body.amountCents, body.memo ?? null, Date.now());
      return reply.status(201).send({ id });
    },
  );
}

export const registerDemoBank = fp(demoBank, { name: 'gatehouse-demo-bank', dependencies: ['gatehouse'] });
