/** Trusted devices: list and revoke (GATEHOUSE_TRUSTED_DEVICE_DAYS). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Gatehouse } from '../../gatehouse.js';
import { requires, sessionOf } from '../gate.js';
import { boundedString, parse } from '../validation.js';

const DeviceParams = z.object({ id: boundedString(1, 64) });

export async function deviceRoutes(app: FastifyInstance, { gatehouse }: { gatehouse: Gatehouse }): Promise<void> {
  const { trustedDevices } = gatehouse;

  app.get('/api/devices', { config: requires({ session: 'full' }) }, async (request) => ({
    devices: await trustedDevices.list(sessionOf(request).userId, request.ctx.now),
  }));

  app.delete('/api/devices/:id', { config: requires({ session: 'full' }) }, async (request, reply) => {
    const { id } = parse(DeviceParams, request.params);
    await trustedDevices.revoke(sessionOf(request).userId, id, request.ctx);
    return reply.status(204).send();
  });
}
