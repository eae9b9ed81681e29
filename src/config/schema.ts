// The one config schema: every key, its default and its description. config/default.yaml is
// generated from it (`plankwatch config defaults`) and a test keeps the two in step.

// Each builder carries the TypeScript type of its key (an enum: the union of its values), so the
// config's type is inferred from this one schema: `Config = ConfigOf<typeof CONFIG_SCHEMA>`.

export interface StringNode<V extends string = string> {
  type: 'string';
  description: string;
  default: V;
  enum?: readonly V[];
  /** Values this key once took, each with what to write instead (refused naming the key). */
  renamed?: Readonly<Record<string, string>>;
}
export interface NumberNode {
  type: 'integer' | 'number';
  description: string;
  default: number;
  minimum?: number;
  maximum?: number;
}
export interface BooleanNode {
  type: 'boolean';
  description: string;
  default: boolean;
}
export interface ObjectNode<P extends Record<string, SchemaNode> = Record<string, SchemaNode>> {
  type: 'object';
  description?: string;
  properties: P;
}
export type SchemaNode = ObjectNode | StringNode | NumberNode | BooleanNode;

/** The value a schema node describes: an object of its keys' values, a string (literal union), a number or a boolean. */
export type ConfigOf<N> =
  N extends ObjectNode<infer P> ? { [K in keyof P]: ConfigOf<P[K]> } : N extends StringNode<infer V> ? V : N extends NumberNode ? number : N extends BooleanNode ? boolean : never;

function str(description: string, def: string): StringNode;
function str<const V extends string>(description: string, def: NoInfer<V>, enumValues: readonly V[], renamed?: Record<string, string>): StringNode<V>;
function str(description: string, def: string, enumValues?: readonly string[], renamed?: Record<string, string>): StringNode {
  return { type: 'string', description, default: def, ...(enumValues ? { enum: enumValues } : {}), ...(renamed ? { renamed } : {}) };
}
const int = (description: string, def: number, minimum = 0, maximum?: number): NumberNode =>
  maximum === undefined ? { type: 'integer', description, default: def, minimum } : { type: 'integer', description, default: def, minimum, maximum };
const number = (description: string, def: number, minimum?: number, maximum?: number): NumberNode => ({ type: 'number', description, default: def, ...(minimum !== undefined ? { minimum } : {}), ...(maximum !== undefined ? { maximum } : {}) });
const bool = (description: string, def: boolean): BooleanNode => ({ type: 'boolean', description, default: def });
const obj = <P extends Record<string, SchemaNode>>(description: string, properties: P): ObjectNode<P> => ({ type: 'object', description, properties });

export const CONFIG_SCHEMA = obj('plankwatch configuration', {
  instrument: obj('The camera this daemon serves.', {
    id: str('Instrument id: used in MQTT topics (plankwatch/<id>/...) and in every synced record. Letters, digits, "-" and "_".', 'isiis-1'),
  }),
  camera: obj('The camera\'s images: background polarity, colour and pixel size (see docs/cameras.md). Every image is prepared to one canonical form (organism bright on a zero background) whatever the camera, so members transfer between cameras.', {
    polarity: str('Background of the images: "bright-field" (dark organisms on a light background), "dark-field" (light organisms on a dark background) or "auto" (decided per image from its border pixels).', 'bright-field', ['auto', 'bright-field', 'dark-field']),
    colour: str('Colour of the images: "gray" (one channel; colour images are converted) or "rgb" (three channels kept, for members trained on colour).', 'gray', ['gray', 'rgb']),
    pixelSizeUm: number('Size of one image pixel in micrometres, for areas and lengths in µm. 0: unknown (sizes stay in pixels).', 0, 0),
  }),
  ingest: obj('Watching the folder where the camera pipeline drops images.', {
    watchDir: str('Folder the camera writes images into (subfolders included). Created if missing.', 'data/incoming'),
    stableMs: int('A file is taken once its size and modification time have not changed for this many milliseconds (protects against half-written files).', 1000, 50),
    rescanIntervalS: int('Seconds between reconciliation scans of the whole watch folder, so that no file is missed even if a watch event is lost. 0 disables the timer (the scan at start always runs).', 60, 0),
    maxPending: int('Most files held in memory between ingest and storage; the rest wait on disk.', 512, 1),
    maxPixels: int('Images with more pixels than this are quarantined (PW_E_IMAGE_TOO_LARGE).', 25000000, 1),
    onProcessed: str('What happens to an image once its result is stored: "leave" it, "archive" it (move to archiveDir) or "delete" it.', 'archive', ['leave', 'archive', 'delete']),
    archiveDir: str('Where processed images are moved when onProcessed is "archive" (relative paths kept; a name a camera reused for other bytes gets the SHA-256 before its extension).', 'data/archive'),
    quarantineDir: str('Where rejected files are moved, with the reason stored in the database.', 'data/quarantine'),
    usePolling: bool('Poll the folder instead of using inotify (for network file systems).', false),
    mode: str('What the camera writes into watchDir: "rois" (one organism per image, cut by the camera\'s software) or "frames" (whole camera frames, cut into ROIs by the segment stage below; the ROI images are kept under archiveDir).', 'rois', ['rois', 'frames']),
  }),
  segment: obj('Cutting whole camera frames into ROIs (ingest.mode "frames"; see docs/segmentation.md). Polarity and pixel size come from camera.', {
    background: str('Background the frames are flat-fielded against: "running" (mean of the last backgroundFrames frames, organisms left out), "columns" (per-column mean over the last frames: line-scan imagers) or "local" (each frame\'s own, from a median over localObjectPx).', 'running', ['running', 'columns', 'local']),
    backgroundFrames: int('Camera frames the running and column backgrounds average over.', 10, 1, 1000),
    localObjectPx: int('Largest organism, in pixels across, that the local background (and the first frame\'s running one) must see through.', 160, 8),
    threshold: int('Contrast to the background, in grey levels of the flat-fielded frame (0-255), from which a pixel belongs to an organism. Lower finds fainter organisms and more noise.', 15, 1, 254),
    closePx: int('Radius in pixels of the closing that fills small gaps in an organism\'s mask; 0: none.', 0, 0, 50),
    mergePx: int('Parts of the mask within about this many pixels of each other (more along diagonals) are one organism (antennae, tentacles, chains); 0: every part its own ROI.', 10, 0, 200),
    minAreaPx: int('Smallest organism kept, in mask pixels.', 40, 1),
    maxAreaPx: int('Largest organism kept, in mask pixels; 0: no limit.', 0, 0),
    dropBorder: bool('Drop organisms that touch the frame\'s edge (cut by it).', true),
    marginPx: int('Pixels of background kept around each organism in its ROI image.', 8, 0, 500),
    maxRois: int('Most ROIs kept from one camera frame (the largest); the others are counted as dropped.', 500, 1),
    frameVolumeL: number('Water imaged by one camera frame, in litres, for concentrations (one volume sample per frame); 0: unknown.', 0, 0),
  }),
  classify: obj('The ensemble and how it runs.', {
    ensemble: str('Ensemble file naming the active members and the voting rule.', 'models/ensemble.json'),
    modelsDir: str('Folder holding models/<member>/<version>/. Fine-tuning writes new versions here and promotion writes the ensemble files, so with finetune.enabled it must be writable.', 'models'),
    baseModelsDir: str('Read-only folder of shipped member versions (an installed copy of models/). A member version that modelsDir lacks is taken from here (linked into modelsDir at start), and a missing classify.ensemble starts as a copy of its ensemble.json. Empty: none, modelsDir holds everything.', ''),
    backend: str('Inference backend: "auto" picks onnx (ONNX Runtime, running each member\'s model.onnx), then tfjs-node-gpu, then tfjs-node, then wasm, then cpu. "wasm" runs the TensorFlow.js WebAssembly path, for comparison on the same files.', 'auto', ['auto', 'onnx', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']),
    onnxProviders: str('ONNX Runtime execution providers to try, in order, separated by commas (cpu, cuda, tensorrt). "auto": tensorrt, then cuda, where their libraries are installed, then cpu. The log says which was picked and why the others were not.', 'auto'),
    onnxThreads: int('ONNX Runtime intra-op threads of each inference thread (the threads one batch runs on). 0 = the CPU cores divided by the inference threads (classify.workers).', 0, 0, 64),
    workers: int('Inference worker threads. TensorFlow.js: one wasm instance each; 0 = one per CPU core. ONNX Runtime: each holds its own copy of the sessions; 0 = one, whose sessions use every core (classify.onnxThreads).', 0, 0, 64),
    maxBatch: int('Largest micro-batch sent to a worker.', 32, 1, 1024),
    maxWaitMs: int('Longest a frame waits for its micro-batch to fill, in milliseconds.', 25, 0),
    topK: int('How many classes are stored per member and per ensemble.', 5, 1, 50),
  }),
  store: obj('The local SQLite database.', {
    path: str('SQLite database file (WAL mode). Its folder is created if missing.', 'data/plankwatch.db'),
    countsWindowS: int('Length of a counts window in seconds (windows are aligned to the clock).', 60, 1),
    flushMs: int('Longest a classified frame waits for others to share its database write, in milliseconds. It applies only while a backlog of at least a full write batch (256 frames) is being classified; otherwise the frames classified together are written at once.', 200, 1),
  }),
  publish: obj('Live results over MQTT.', {
    mqttUrl: str('Broker URL (mqtt://host:1883 or mqtts://host:8883). Empty: start the embedded broker below and publish to it.', ''),
    username: str('MQTT user name (empty: none).', ''),
    passwordFile: str('File holding the MQTT password (e.g. a systemd credential); empty: none.', ''),
    caFile: str('CA certificate file for mqtts:// (empty: system CAs).', ''),
    certFile: str('Client certificate file for mqtts:// (empty: none).', ''),
    keyFile: str('Client key file for mqtts:// (empty: none).', ''),
    topicPrefix: str('First level of every topic.', 'plankwatch'),
    embeddedHost: str('Address of the embedded broker (used only when mqttUrl is empty). Anything but a loopback address requires embeddedUsername and embeddedPasswordFile.', '127.0.0.1'),
    embeddedPort: int('Port of the embedded broker.', 1883, 0, 65535),
    embeddedUsername: str('User name every subscriber must give to the embedded broker (with embeddedPasswordFile). Empty: anyone who reaches it may read <topicPrefix>/... (only the daemon ever publishes).', ''),
    embeddedPasswordFile: str('File holding the password that goes with embeddedUsername (e.g. a systemd credential); empty: none.', ''),
    countsMinIntervalMs: int('Shortest time between two counts messages for the current window.', 1000, 0),
    statsIntervalS: int('Seconds between stats messages.', 10, 1),
    detections: bool('Also publish one message per classified ROI on plankwatch/<id>/detections.', false),
  }),
  http: obj('Health, metrics and (later) the review page.', {
    enabled: bool('Serve /health and /metrics.', true),
    host: str('Address to listen on. Anything but a loopback address requires tokenFile.', '127.0.0.1'),
    port: int('Port to listen on.', 8080, 0, 65535),
    tokenFile: str('File holding the bearer token required when host is not loopback.', ''),
    allowedHosts: str('Other names or addresses this server answers to, besides 127.0.0.1, localhost, [::1] and host itself (each with port; bound to 0.0.0.0 or ::, this machine\'s own addresses too): the ship\'s network name or address the review page is opened by, separated by commas, e.g. "ship-lab.local, 192.168.1.20". An entry without :port matches any port (behind a proxy). Requests naming another host (Host header) are refused, and so are changes sent from pages of other sites.', ''),
  }),
  review: obj('Reviewing labels: the web page at /review and its JSON API under /api (served by the http server).', {
    enabled: bool('Serve the review page and its API.', true),
    pageSize: int('ROIs shown on one page of the review queue.', 24, 1, 500),
    enlargedPx: int('Side in pixels of the enlarged view of each ROI on the page (small ROIs are scaled up to it, pixelated).', 160, 32, 1024),
    chartHours: int('Hours of counts shown in the live chart on the page.', 6, 1, 168),
    chartRefreshS: int('Seconds between refreshes of the live chart.', 30, 5),
    sessionHours: int('How long a browser login (cookie) stays valid when the server needs a token.', 12, 1, 720),
  }),
  finetune: obj('Fine-tuning on board: new member versions trained on the validated labels in a background thread, promoted only through the gate (see README "Fine-tuning on board").', {
    enabled: bool('Fine-tune automatically (threshold and schedule below). POST /api/finetune/run works either way.', true),
    minNewLabels: int('Start a run when this many labels were validated since the last completed run (and minIntervalHours have passed). 0: never on count.', 200, 0),
    minIntervalHours: number('No automatic run (threshold or schedule) starts sooner than this many hours after the previous run started; a failed or cancelled run counts. POST /api/finetune/run is not held back.', 6, 0),
    scheduleHours: int('Also start a run when this many hours have passed since the previous run (before the first run: since the oldest new label) and at least scheduleMinLabels new labels came in. 0: no schedule.', 24, 0),
    scheduleMinLabels: int('New validated labels a scheduled run needs.', 50, 1),
    checkIntervalS: int('Seconds between checks of the threshold and the schedule.', 30, 1),
    evalFraction: number('Fraction of validated frames set aside for good (by hashing the frame\'s sha256, recorded in the database) and never trained on: the ship\'s slice of the gate\'s evaluation set.', 0.2, 0, 0.9),
    referenceData: str('The shipped reference set: a folder holding eval/ (always in the gate\'s evaluation set, never trained on) and replay/ (replayed), each a folder per class. Empty: <classify.modelsDir>/reference, else <classify.baseModelsDir>/reference. Missing: none.', ''),
    evalData: str('Extra labelled folder (a folder per class) added to the gate\'s evaluation set. Empty: none.', ''),
    evalLimit: int('Most images taken from evalData (a seeded sample). 0: all.', 2000, 0),
    replayData: str('Extra replay folder (a folder per class, e.g. the members\' original training data), drawn from after the ship\'s own frames and the shipped reference set. Empty: none.', ''),
    replayPerClass: int('Replay images per class the member knows, mixed in so that old classes are not forgotten: the ship\'s own high-confidence frames first, then the shipped reference set, then replayData (their cost per epoch grows with the number of classes: 50 x 121 NDSB classes is about 6,000 images).', 50, 0),
    replayMinProbability: number('A classified frame nobody labelled is replayed as its predicted class only with at least this ensemble probability and every member agreeing.', 0.9, 0.5, 1),
    labelRepeat: int('Each validated label counts this many times per epoch.', 1, 1, 20),
    minNewClassLabels: int('A class the ensemble does not know is added to the members\' heads once it has this many validated training labels.', 10, 1),
    layers: str('Which layers learn: "head" (the classifier only; features stay as trained), "top" (also the last convolution block and dense layers) or "all".', 'head', ['head', 'top', 'all']),
    keepOldClasses: bool('With layers "head", when new classes are introduced: keep the old classes\' classifier weights as they were, so old classes score exactly as before except where a new class now wins.', true),
    newClassFalsePositive: number('A new class\'s bias is set so that it would claim at most this share of any one old class\'s replay images: lower keeps old classes safer, higher gives the new class more recall. 0: no calibration.', 0.01, 0, 0.5),
    epochs: int('Training epochs per run when layers above the classifier learn ("top", "all"), or the classifier through TensorFlow.js.', 10, 1, 200),
    headEpochs: int('Training epochs per run when only the classifier learns, on features computed once (layers "head"): an epoch takes milliseconds, and 10 left a new class under-learnt (docs/finetune.md).', 60, 1, 1000),
    batchSize: int('Images per training step.', 32, 1, 512),
    learningRate: number('Initial learning rate (Adam, cosine decay).', 0.002, 0, 1),
    classWeights: str('Loss weight per class against imbalance.', 'sqrt', ['balanced', 'sqrt', 'none']),
    augment: bool('Augment training images online (any rotation and a mirror: nothing that changes a class).', true),
    maxMinutes: int('Stop training a member after this many minutes, keeping what it learnt. 0: no limit.', 60, 0),
    niceness: int('Scheduling niceness of the fine-tuning thread (0-19): higher leaves more CPU to classification.', 15, 0, 19),
    backend: str('Training backend, named as in classify.backend (training has no onnx): "auto" takes tfjs-node-gpu, else tfjs-node, where installed, else wasm. A backend named here must be installed.', 'auto', ['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'], {
      tensorflow: 'as in classify.backend: "tfjs-node-gpu" or "tfjs-node" (the package installed), or "auto"',
    }),
    maxAccuracyDrop: number('Gate: largest allowed drop of ensemble accuracy on the evaluation images of classes the active ensemble knows, measured apart from new classes (0: must not drop).', 0, 0, 1),
    maxRecallDrop: number('Gate: largest allowed drop of one class\'s recall (0.02: two points).', 0.02, 0, 1),
    minClassExamples: int('Gate: classes with fewer evaluation images are not held to the recall rule.', 10, 1),
    minEvalImages: int('Gate: fewer evaluation images of classes the active ensemble knows and the old classes count as unmeasured: the candidate is kept, not promoted automatically (PW_E_FINETUNE_UNMEASURED).', 100, 1),
    pollEnsembleMs: int('How often the daemon checks classify.ensemble for a promotion made elsewhere (plankwatch models promote|rollback), in milliseconds.', 1000, 50),
  }),
  sync: obj('Sync ashore: a durable outbox sent to the shore broker over an intermittent link (see README "Sync ashore").', {
    enabled: bool('Send results ashore. Off: nothing is queued or sent.', false),
    url: str('Shore broker URL (mqtts://shore.example.org:8883 or mqtt://host:1883). Required when enabled.', ''),
    username: str('MQTT user name at the shore broker (empty: none).', ''),
    passwordFile: str('File holding the shore broker password (e.g. a systemd credential); empty: none.', ''),
    shoreKeyFile: str('File holding the key the shore signs its statuses with (the same secret as shore.statusKeyFile; e.g. a systemd credential; make one with openssl rand -hex 32). Set: only statuses signed with it may trim the outbox. Empty: statuses are not authenticated, only the broker ACL protects them (logged at start).', ''),
    caFile: str('CA certificate file for mqtts:// (empty: system CAs).', ''),
    certFile: str('Client certificate file for mqtts:// (empty: none).', ''),
    keyFile: str('Client key file for mqtts:// (empty: none).', ''),
    clientId: str('MQTT client id; must be stable so the broker keeps the session. Empty: plankwatch-sync-<instrument.id>.', ''),
    topicPrefix: str('First topic level: batches go to <topicPrefix>/<instrument.id>/batch.', 'plankwatch-sync'),
    bytesPerSecond: int('Most MQTT bytes per second sent ashore (token bucket; 8000 = 64 kbit/s). 0: no cap.', 8000, 0),
    dailyBytes: int('Most MQTT bytes sent ashore per UTC day; sending pauses until midnight UTC when reached. 0: no cap.', 0, 0),
    maxBatchBytes: int('Largest compressed batch message, in bytes.', 16384, 512),
    maxBatchRecords: int('Most records in one batch message.', 500, 1),
    maxInFlight: int('Batches sent and not yet acknowledged by the broker.', 4, 1, 64),
    compression: str('Batch compression.', 'brotli', ['brotli', 'gzip', 'none']),
    countsHoldS: int('A counts or rejects record that changed less than this many seconds ago waits, so a busy window is not resent with every batch.', 10, 0),
    maxDelayS: number('Latency budget: a live record waits up to this many seconds for others to share its batch (a trickle of one or two ROIs per batch costs several times the bytes per ROI). 0: send each record at once.', 10, 0, 3600),
    trackIntervalS: number('The ship\'s track and CTD series go ashore decimated to one point per this many seconds (each ROI\'s own position and depth go in full).', 10, 0),
    thumbnails: bool('Also send a small thumbnail of each validated or dubious ROI (lowest priority, within the budget).', false),
    thumbnailSize: int('Longest side of a thumbnail, in pixels.', 64, 16, 512),
    resendAfterS: int('A record the broker acknowledged but the shore still reports missing this many seconds later is sent again.', 120, 5),
    ackTimeoutS: int('A batch without a broker acknowledgement after this many seconds (connected) is sent again.', 120, 5),
    keepaliveS: int('MQTT keepalive in seconds.', 60, 5),
    sessionExpiryS: int('How long the shore broker keeps this ship\'s session (and queued shore status) while the link is down, in seconds.', 604800, 60),
  }),
  shore: obj('The shore ingester (`plankwatch shore`): shared subscription on the shore broker into SQLite or PostgreSQL.', {
    url: str('Shore broker URL.', 'mqtt://127.0.0.1:1883'),
    username: str('MQTT user name (empty: none).', ''),
    passwordFile: str('File holding the MQTT password; empty: none.', ''),
    caFile: str('CA certificate file for mqtts:// (empty: system CAs).', ''),
    certFile: str('Client certificate file for mqtts:// (empty: none).', ''),
    keyFile: str('Client key file for mqtts:// (empty: none).', ''),
    clientId: str('MQTT client id, stable and different for each ingester. Empty: plankwatch-shore-<hostname>.', ''),
    group: str('Shared subscription group: ingesters with the same group split the batches between them.', 'plankwatch-shore'),
    topicPrefix: str('Topic prefix the ships publish under (sync.topicPrefix on the ships).', 'plankwatch-sync'),
    database: str('Where records go: "sqlite" (one machine) or "postgres" (several ingesters on several machines).', 'sqlite', ['sqlite', 'postgres']),
    sqlitePath: str('SQLite file when database is "sqlite".', 'data/shore.db'),
    postgresUrl: str('PostgreSQL connection URL when database is "postgres" (postgres://user@host:5432/db), without the password.', ''),
    postgresPasswordFile: str('File holding the PostgreSQL password; empty: none (or in the URL / PGPASSWORD).', ''),
    statusIntervalS: int('Seconds between the gap reports published back to each ship (retained, on <topicPrefix>/<instrument>/shore-status).', 10, 1),
    statusKeyFile: str('File holding the key the gap reports are signed with (HMAC-SHA256; the same secret as sync.shoreKeyFile on the ships). Empty: reports go unsigned, and a ship with sync.shoreKeyFile set ignores them.', ''),
    httpHost: str('Address of the status endpoint (GET /status, /gaps/<instrument>, /health).', '127.0.0.1'),
    httpPort: int('Port of the status endpoint; 0 picks a free one.', 8090, 0, 65535),
    httpTokenFile: str('File holding the bearer token required when httpHost is not loopback.', ''),
    httpAllowedHosts: str('Other names or addresses the status endpoint answers to, besides 127.0.0.1, localhost, [::1] and httpHost itself (each with httpPort; bound to 0.0.0.0 or ::, this machine\'s own addresses too), separated by commas, e.g. "shore-db.example.org". An entry without :port matches any port (behind a proxy). Requests naming another host (Host header) are refused.', ''),
  }),
  export: obj('Exports (`plankwatch export ecotaxa|dwc`): fixed metadata written into every record. Empty strings leave a column empty.', {
    latitude: str('Decimal latitude of the station (e.g. "25.7"); empty: unknown.', ''),
    longitude: str('Decimal longitude of the station (e.g. "-80.1"); empty: unknown.', ''),
    depthMinM: str('Shallowest depth sampled, in metres; empty: unknown.', ''),
    depthMaxM: str('Deepest depth sampled, in metres; empty: unknown.', ''),
    cruise: str('Cruise or project name, used in event ids and the dataset title.', ''),
    institution: str('Institution code for Darwin Core (institutionCode).', ''),
    taxaFile: str('Class-to-WoRMS mapping for Darwin Core (TSV: label, scientific name, LSID, rank, kingdom, life stage; or not-an-organism). Empty: the shipped config/taxa-worms.tsv for the NDSB classes. See docs/exports.md.', ''),
    licence: str('Licence of the Darwin Core dataset, as GBIF and OBIS accept: "CC-BY-4.0", "CC0-1.0" or "CC-BY-NC-4.0".', 'CC-BY-4.0', ['CC-BY-4.0', 'CC0-1.0', 'CC-BY-NC-4.0']),
    creatorName: str('Person who made the dataset (eml.xml creator), e.g. "Ana Silva"; empty: the institution only.', ''),
    creatorEmail: str('E-mail address of the creator.', ''),
    contactName: str('Person to contact about the dataset (eml.xml contact); empty: the creator.', ''),
    contactEmail: str('E-mail address of the contact; empty: the creator\'s.', ''),
    eventMinutes: int('Length of one sampling event (tow segment) in minutes: Darwin Core events and EcoTaxa samples are cut by capture time into windows this long.', 60, 1, 1440),
    depthBinM: number('Depth bin of the Darwin Core events and EcoTaxa acquisitions, in metres; 0: one bin per tow segment, whatever the depth.', 5, 0),
    mediaPerOccurrence: int('Images put in a Darwin Core Archive (under media/) and named in associatedMedia, per occurrence; 0: none.', 5, 0),
  }),
  nav: obj('Ship navigation (NMEA 0183) and CTD: every stored ROI is tagged with position, depth, temperature and salinity at its capture time, and concentrations per class and depth are computed from the sampled volume (see docs/navigation.md).', {
    enabled: bool('Run the navigation stage.', false),
    udp: obj('NMEA over UDP (unicast or broadcast).', {
      ports: str('UDP ports to listen on, separated by commas, e.g. "10110". Empty: none.', ''),
      host: str('Address to bind: "0.0.0.0" receives broadcasts on every interface.', '0.0.0.0'),
    }),
    tcp: obj('NMEA from a TCP server (a navigation multiplexer): plankwatch connects and reconnects.', {
      endpoints: str('host:port of each server, separated by commas, e.g. "192.168.1.10:10110". Empty: none.', ''),
      reconnectMaxS: int('Longest wait between two connection attempts, in seconds (the wait doubles from 1 s up to this).', 30, 1),
    }),
    serial: obj('NMEA on serial lines (RS-232/RS-422 adapters).', {
      ports: str('Serial devices, separated by commas, e.g. "/dev/ttyUSB0". The daemon user needs the dialout group. Empty: none.', ''),
      baudRate: int('Baud rate of every serial port (NMEA 0183: 4800; many receivers and CTDs: 9600 or 38400).', 4800, 50),
    }),
    file: obj('NMEA appended to logged files (e.g. by the ship\'s logger).', {
      paths: str('Files to follow, separated by commas; a file replaced or truncated (log rotation) is read again from its start. Empty: none.', ''),
      fromStart: bool('Read each file from its beginning at start (a recording); else only lines written after the start.', false),
    }),
    requireChecksum: bool('Drop NMEA sentences without a checksum (*hh). Sentences with a wrong checksum are always dropped (PW_E_NAV_SENTENCE).', true),
    maxGapS: number('Samples at most this many seconds apart are interpolated between; across a longer gap the nearer value is held (quality "held").', 10, 0),
    maxHoldS: number('A value older (or newer) than this many seconds is not held: the ROI is tagged "missing".', 300, 0),
    flushMs: int('Longest navigation and CTD samples wait in memory before one database write, in milliseconds.', 1000, 10),
    ctd: obj('CTD sentences (proprietary) on the same inputs.', {
      pattern: str('Regular expression a CTD line matches, with named groups among depth (m), pressure (dbar), temperature (deg C), salinity and time (hhmmss[.ss] UTC or ISO 8601), e.g. "^\\$PCTD,(?<pressure>[-\\d.]+),(?<temperature>[-\\d.]+),(?<salinity>[-\\d.]+)". A trailing *hh checksum is checked. Empty: no CTD on the inputs.', ''),
      fields: str('Instead of pattern: the sentence id and which comma-separated field holds which value, e.g. "$PCTD pressure=1 temperature=2 salinity=3" (field 0 is the id). Empty: pattern is used.', ''),
      latitude: number('Latitude used to turn pressure into depth when no fix is known (UNESCO 1983).', 45, -90, 90),
      depthOffsetM: number('Metres added to the CTD depth to give the camera\'s depth (positive when the camera is below the CTD).', 0),
    }),
    time: obj('The capture time of each ROI, in this order: file name, EXIF, sidecar, else arrival time.', {
      filenamePattern: str('Regular expression finding the capture time (UTC) in a file name, with named groups year, month, day, hour, minute, second and optionally fraction (of a second). Empty: not from the name.', '(?<year>\\d{4})-?(?<month>\\d{2})-?(?<day>\\d{2})[T_ -]?(?<hour>\\d{2}):?(?<minute>\\d{2}):?(?<second>\\d{2})(?:[.,](?<fraction>\\d{1,6}))?'),
      exif: bool('Read EXIF DateTimeOriginal with SubSecTimeOriginal (and OffsetTimeOriginal; UTC when absent) from JPEG and TIFF files.', true),
    }),
    sidecar: obj('Per-image and per-folder sidecar files with time, position, CTD values or volume (JSON, see docs/navigation.md).', {
      perImage: bool('Read <image name without extension>.json beside each image, when present.', true),
      folderFile: str('Name of a JSON file whose values apply to every image of its folder (e.g. "ctd.json"). Empty: none.', ''),
    }),
    volume: obj('Sampled volume, for concentrations (individuals per m3).', {
      source: str('"swept": field of view width x depth of field x speed through water (VHW, else speed over ground) integrated over time; "sidecar": the volume_m3 of each image\'s sidecar; "off": none (other stages may still record volume).', 'off', ['off', 'swept', 'sidecar']),
      fovWidthM: number('Width of the imaged field across the direction of travel, in metres (swept).', 0, 0),
      depthOfFieldM: number('Depth of field of the camera, in metres (swept).', 0, 0),
      speed: str('Which speed sweeps the volume: "auto" (through water when VHW arrives, else over ground), "water" or "ground".', 'auto', ['auto', 'water', 'ground']),
    }),
    concentrations: obj('Concentrations per class, per counts window (store.countsWindowS) and depth bin.', {
      depthBinM: number('Height of a depth bin in metres.', 5, 0.1),
      intervalS: int('Seconds between two computations (and MQTT publications) of the recent windows.', 10, 1),
      profileHours: number('Hours of data the retained depth profile (plankwatch/<id>/profile) covers.', 1, 0.01),
    }),
  }),
  log: obj('Logging (JSON lines on stdout; journald under systemd).', {
    level: str('Least severe level logged.', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
  }),
  daemon: obj('Lifecycle.', {
    shutdownTimeoutS: int('Longest a stop waits for the batch in flight before exiting anyway.', 30, 1),
  }),
});
