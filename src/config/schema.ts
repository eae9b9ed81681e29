// The one config schema: every key, its default and its description. config/default.yaml is
// generated from it (`plankwatch config defaults`) and a test keeps the two in step.

export type SchemaNode =
  | { type: 'object'; description?: string; properties: Record<string, SchemaNode> }
  | { type: 'string'; description: string; default: string; enum?: readonly string[] }
  | { type: 'integer' | 'number'; description: string; default: number; minimum?: number; maximum?: number }
  | { type: 'boolean'; description: string; default: boolean };

const str = (description: string, def: string, enumValues?: readonly string[]): SchemaNode =>
  enumValues ? { type: 'string', description, default: def, enum: enumValues } : { type: 'string', description, default: def };
const int = (description: string, def: number, minimum = 0, maximum?: number): SchemaNode =>
  maximum === undefined ? { type: 'integer', description, default: def, minimum } : { type: 'integer', description, default: def, minimum, maximum };
const bool = (description: string, def: boolean): SchemaNode => ({ type: 'boolean', description, default: def });
const obj = (description: string, properties: Record<string, SchemaNode>): SchemaNode => ({ type: 'object', description, properties });

export const CONFIG_SCHEMA = obj('plankwatch configuration', {
  instrument: obj('The camera this daemon serves.', {
    id: str('Instrument id: used in MQTT topics (plankwatch/<id>/...) and in every synced record. Letters, digits, "-" and "_".', 'isiis-1'),
  }),
  ingest: obj('Watching the folder where the camera pipeline drops images.', {
    watchDir: str('Folder the camera writes images into (subfolders included). Created if missing.', 'data/incoming'),
    stableMs: int('A file is taken once its size and modification time have not changed for this many milliseconds (protects against half-written files).', 1000, 50),
    rescanIntervalS: int('Seconds between reconciliation scans of the whole watch folder, so that no file is missed even if a watch event is lost. 0 disables the timer (the scan at start always runs).', 60, 0),
    maxPending: int('Most files held in memory between ingest and storage; the rest wait on disk.', 512, 1),
    maxPixels: int('Images with more pixels than this are quarantined (PW_E_IMAGE_TOO_LARGE).', 25000000, 1),
    onProcessed: str('What happens to an image once its result is stored: "leave" it, "archive" it (move to archiveDir) or "delete" it.', 'archive', ['leave', 'archive', 'delete']),
    archiveDir: str('Where processed images are moved when onProcessed is "archive" (relative paths kept).', 'data/archive'),
    quarantineDir: str('Where rejected files are moved, with the reason stored in the database.', 'data/quarantine'),
    usePolling: bool('Poll the folder instead of using inotify (for network file systems).', false),
  }),
  classify: obj('The ensemble and how it runs.', {
    ensemble: str('Ensemble file naming the active members and the voting rule.', 'models/ensemble.json'),
    modelsDir: str('Folder holding models/<member>/<version>/.', 'models'),
    backend: str('Inference backend: "auto" picks tfjs-node-gpu, then tfjs-node, then wasm, then cpu.', 'auto', ['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']),
    workers: int('Inference worker threads (one wasm instance each). 0 = one per CPU core.', 0, 0, 64),
    maxBatch: int('Largest micro-batch sent to a worker.', 32, 1, 1024),
    maxWaitMs: int('Longest a frame waits for its micro-batch to fill, in milliseconds.', 25, 0),
    topK: int('How many classes are stored per member and per ensemble.', 5, 1, 50),
  }),
  store: obj('The local SQLite database.', {
    path: str('SQLite database file (WAL mode). Its folder is created if missing.', 'data/plankwatch.db'),
    countsWindowS: int('Length of a counts window in seconds (windows are aligned to the clock).', 60, 1),
    flushMs: int('Longest a classified frame waits before its batch is written, in milliseconds.', 200, 1),
  }),
  publish: obj('Live results over MQTT.', {
    mqttUrl: str('Broker URL (mqtt://host:1883 or mqtts://host:8883). Empty: start the embedded broker below and publish to it.', ''),
    username: str('MQTT user name (empty: none).', ''),
    passwordFile: str('File holding the MQTT password (e.g. a systemd credential); empty: none.', ''),
    caFile: str('CA certificate file for mqtts:// (empty: system CAs).', ''),
    certFile: str('Client certificate file for mqtts:// (empty: none).', ''),
    keyFile: str('Client key file for mqtts:// (empty: none).', ''),
    topicPrefix: str('First level of every topic.', 'plankwatch'),
    embeddedHost: str('Address of the embedded broker (used only when mqttUrl is empty).', '127.0.0.1'),
    embeddedPort: int('Port of the embedded broker.', 1883, 0, 65535),
    countsMinIntervalMs: int('Shortest time between two counts messages for the current window.', 1000, 0),
    statsIntervalS: int('Seconds between stats messages.', 10, 1),
    detections: bool('Also publish one message per classified ROI on plankwatch/<id>/detections.', false),
  }),
  http: obj('Health, metrics and (later) the review page.', {
    enabled: bool('Serve /health and /metrics.', true),
    host: str('Address to listen on. Anything but a loopback address requires tokenFile.', '127.0.0.1'),
    port: int('Port to listen on.', 8080, 0, 65535),
    tokenFile: str('File holding the bearer token required when host is not loopback.', ''),
  }),
  review: obj('Reviewing labels: the web page at /review and its JSON API under /api (served by the http server).', {
    enabled: bool('Serve the review page and its API.', true),
    pageSize: int('ROIs shown on one page of the review queue.', 24, 1, 500),
    enlargedPx: int('Side in pixels of the enlarged view of each ROI on the page (small ROIs are scaled up to it, pixelated).', 160, 32, 1024),
    chartHours: int('Hours of counts shown in the live chart on the page.', 6, 1, 168),
    chartRefreshS: int('Seconds between refreshes of the live chart.', 30, 5),
    sessionHours: int('How long a browser login (cookie) stays valid when the server needs a token.', 12, 1, 720),
  }),
  log: obj('Logging (JSON lines on stdout; journald under systemd).', {
    level: str('Least severe level logged.', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
  }),
  daemon: obj('Lifecycle.', {
    shutdownTimeoutS: int('Longest a stop waits for the batch in flight before exiting anyway.', 30, 1),
  }),
});
