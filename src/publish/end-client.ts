// Closing an MQTT.js client, shared by the live publisher and the sync link.
import type { MqttClient } from 'mqtt';

/**
 * Disconnects cleanly (DISCONNECT sent, so the broker does not publish the will), or forcibly
 * after `timeoutMs`; then detaches every listener. Errors a half-closed socket may still emit
 * afterwards are swallowed.
 */
export async function endClient(client: MqttClient, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      client.end(true);
      resolve();
    }, timeoutMs);
    client.end(false, {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
  client.removeAllListeners();
  client.on('error', () => undefined);
}
