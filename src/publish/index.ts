// The publish stage's public surface: the live MQTT topics, and the embedded broker they go to when
// no broker is configured.
export { EmbeddedBroker, type BrokerLogin, type EmbeddedBrokerOptions } from './embedded-broker.js';
export { Publisher, type PublisherMqttOptions, type PublisherOptions } from './publisher.js';
export type { CountsWindow, Detection, ModelInfo, ModelMemberInfo, PipelineStats, PublisherProviders } from './types.js';
