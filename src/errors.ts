// The error catalogue: every code a technician can meet in a log line, with what to do about it.
// README "Error codes" gives each code a short row of these words; keep them in step.

export interface ErrorInfo {
  /** What happened, in words a technician can act on. */
  message: string;
  /** What to do. */
  action: string;
}

export const ERRORS = {
  PW_E_CONFIG_INVALID: {
    message: 'The configuration is invalid.',
    action: 'Fix the key named in the message (see config/default.yaml for every key and its meaning), then run `plankwatch config validate FILE`.',
  },
  PW_E_CONFIG_READ: {
    message: 'The configuration file could not be read or parsed as YAML.',
    action: 'Check the path given to --config and the YAML syntax (indentation, colons).',
  },
  PW_E_IMAGE_EMPTY: {
    message: 'The image file is empty (0 bytes).',
    action: 'The camera pipeline wrote nothing; check its disk and process. The file was moved to quarantine/.',
  },
  PW_E_IMAGE_FORMAT: {
    message: 'The file is not a JPEG, PNG or TIFF image.',
    action: 'Only JPEG, PNG and TIFF are classified. Move other files out of the watch folder; this one was moved to quarantine/.',
  },
  PW_E_IMAGE_CORRUPT: {
    message: 'The image is corrupt or truncated and cannot be decoded.',
    action: 'Usually a camera write cut short. The file was moved to quarantine/; nothing else is affected.',
  },
  PW_E_IMAGE_TOO_LARGE: {
    message: 'The image has more pixels than ingest.maxPixels allows.',
    action: 'Raise ingest.maxPixels if such images are expected; the file was moved to quarantine/.',
  },
  PW_E_IMAGE_UNREADABLE: {
    message: 'The file could not be read (permissions or disk error).',
    action: 'Check file permissions and the disk; the daemon user must be able to read the watch folder.',
  },
  PW_E_IMAGE_LINK: {
    message: 'A symbolic link was found where an image file should be; links are never followed.',
    action: 'Have the camera pipeline write (or move) real files into ingest.watchDir, not links. A link found there was moved to quarantine/ (the link only, its target untouched); one found in ingest.archiveDir is never served: put the image back or remove the link.',
  },
  PW_E_IMAGE_SPECIAL: {
    message: 'A FIFO, socket or device was found where an image file should be; it is never opened.',
    action: 'Something other than the camera created it in ingest.watchDir; find out what, and remove it. It was moved to quarantine/ (or, when that is on another file system, left and reported once).',
  },
  PW_E_IMAGE_MISMATCH: {
    message: 'The file on disk for this frame no longer holds its bytes (its SHA-256 differs); it is never served, exported or trained on.',
    action: 'The file was overwritten or replaced after classification (a camera reusing a file name with ingest.onProcessed "leave", or a change by hand). Restore the original from a backup if it matters; the label and prediction are kept.',
  },
  PW_E_FRAME_BIT_DEPTH: {
    message: 'A camera frame (ingest.mode "frames") does not have the bit depth the segmenter takes (8 bits per pixel).',
    action: 'Set the camera to write 8-bit images (or convert them before they reach ingest.watchDir). The frame was moved to quarantine/; nothing was segmented from it.',
  },
  PW_E_FRAME_BLANK: {
    message: 'A camera frame (ingest.mode "frames") is all black or all white: nothing can be seen in it.',
    action: 'Check the camera\'s light, exposure and lens cap (the message says black or white). The frame was moved to quarantine/; it counts no sampled volume.',
  },
  PW_E_SEGMENT: {
    message: 'Segmenting a camera frame into ROIs failed (OpenCV or its thread).',
    action: 'The frame stays in ingest.watchDir and is tried again at the next scan. Send the log line to the developers if it repeats.',
  },
  PW_E_MODEL_LOAD: {
    message: 'An ensemble member could not be loaded.',
    action: 'Check the ensemble file (classify.ensemble) and that each member folder (in classify.modelsDir or classify.baseModelsDir) has model.json, weights and meta.json; `plankwatch config validate FILE` names the member at fault, `plankwatch models list` shows what is installed. At start the daemon exits with status 2; when a new ensemble fails to load, the active one stays.',
  },
  PW_E_BACKEND: {
    message: 'The requested inference or training backend could not be started.',
    action: 'Set classify.backend (inference) or finetune.backend (training) to "auto", or install the named backend package (see README: GPU backend).',
  },
  PW_E_ONNX_RUNTIME: {
    message: 'ONNX Runtime (the onnxruntime-node package) could not be loaded or could not run a member; inference falls back to TensorFlow.js.',
    action: 'Reinstall with `npm ci` (the package ships its CPU libraries), or set classify.backend to "wasm" to silence this. For a GPU, see README "GPU and other execution providers" (classify.onnxProviders).',
  },
  PW_E_MODEL_IMPORT: {
    message: 'An ONNX model could not be imported as a member version.',
    action: 'The message names what does not fit: the model must read one batch of square images (1 or 3 channels, NCHW or NHWC) and give one value per class listed in the --classes file; name its input or output with --input or --output when it has several. See docs/training.md "Models from elsewhere".',
  },
  PW_E_ONNX_EXPORT: {
    message: 'A network could not be written as model.onnx.',
    action: 'Only the built-in architectures (plain chains of convolution, batch norm, activation, max pooling, dense) export; other members run on TensorFlow.js (classify.backend: "wasm").',
  },
  PW_E_DB: {
    message: 'The database could not be opened or written.',
    action: 'Check the disk is not full and the daemon user can write store.path and its folder.',
  },
  PW_E_MQTT: {
    message: 'The MQTT broker is unreachable; results are stored and will be published when it is back.',
    action: 'Check publish.mqttUrl and that the broker runs. Nothing is lost meanwhile.',
  },
  PW_E_MQTT_BIND: {
    message: 'The embedded MQTT broker could not listen on its port.',
    action: 'Another broker may already use the port: set publish.mqttUrl to it, or change publish.embeddedPort.',
  },
  PW_E_MQTT_REFUSED: {
    message: 'The embedded MQTT broker refused a client (the reason is in the log line): only the daemon publishes there, and subscribers may only read the daemon\'s topics.',
    action: 'A dashboard of yours: subscribe under publish.topicPrefix only, with publish.embeddedUsername and the password in publish.embeddedPasswordFile when they are set. A client you do not know: keep publish.embeddedHost on 127.0.0.1 or set those credentials.',
  },
  PW_E_HTTP_BIND: {
    message: 'The HTTP server could not listen on its address.',
    action: 'Change http.port or stop the program that holds it.',
  },
  PW_E_HTTP_HOST: {
    message: 'A request named a host this server does not answer to (its Host header), as a web page does after pointing its own name at this machine.',
    action: 'Open the page by an address the server knows (127.0.0.1, localhost or http.host, with http.port), or add the name or address used on the ship\'s network to http.allowedHosts (shore.httpAllowedHosts on the shore).',
  },
  PW_E_HTTP_ORIGIN: {
    message: 'A request that changes something came from a page of another site (its Origin or Referer header names a host this server does not answer to) and was refused.',
    action: 'Nothing to do if you did not send it: another web page tried to act through your browser. If it was yours, open the review page by an address listed in http.allowedHosts (or 127.0.0.1 / localhost with http.port).',
  },
  PW_E_HTTP_CONTENT_TYPE: {
    message: 'A request that changes something was not sent as JSON and was refused (browsers send forms and plain text from any site without asking).',
    action: 'Send Content-Type: application/json with a JSON body ({} when there is nothing to say), e.g. curl -X POST -H \'Content-Type: application/json\' -d \'{}\' URL.',
  },
  PW_E_HTTP_AUTH: {
    message: 'A request carried a wrong bearer token.',
    action: 'Send the header Authorization: Bearer followed by the token held in the file named by http.tokenFile. Repeated wrong tries lock the address out for a while (PW_E_HTTP_AUTH_LOCKED).',
  },
  PW_E_HTTP_AUTH_LOCKED: {
    message: 'Too many wrong tokens from this address: logins and bearer tokens from it are refused for a while.',
    action: 'Wait the seconds given (Retry-After), then use the token held in the file named by http.tokenFile. Each further wrong try doubles the wait; a right one clears it. The log names the address (ip) that tried.',
  },
  PW_E_WATCH: {
    message: 'The watch folder could not be watched.',
    action: 'Check ingest.watchDir exists and is readable; the periodic rescan keeps working meanwhile.',
  },
  PW_E_MOVE: {
    message: 'A processed or rejected file could not be moved or deleted.',
    action: 'Check the daemon user can write the watch, archive and quarantine folders. The result itself is stored.',
  },
  PW_E_REVIEW_REQUEST: {
    message: 'A review request is malformed.',
    action: 'Fix the field named in the message; docs/api.md lists every route and its payload.',
  },
  PW_E_REVIEW_NOT_FOUND: {
    message: 'No classified frame with this SHA-256 is stored.',
    action: 'Check the sha256 (64 lowercase hex digits) against GET /api/review/queue or the frames table.',
  },
  PW_E_REVIEW_IMAGE_GONE: {
    message: 'The image file of this frame is no longer on disk.',
    action: 'Its label and prediction are kept. Images are looked for in ingest.watchDir and ingest.archiveDir; with ingest.onProcessed "delete" they are gone once classified.',
  },
  PW_E_REVIEW_CONFLICT: {
    message: 'The label changed since it was shown; nothing was written.',
    action: 'Reload the queue to see the current label (someone else may have reviewed this ROI), then try again.',
  },
  PW_E_REVIEW_NEW_CLASS: {
    message: 'The label names a class the ensemble does not know.',
    action: 'Check the spelling. To introduce a new class on purpose, send the correction again with "newClass": true (the page asks for confirmation).',
  },
  PW_E_REVIEW_AUTH: {
    message: 'Review login failed: the token is wrong.',
    action: 'Use the token held in the file named by http.tokenFile.',
  },
  PW_E_SYNC_LINK: {
    message: 'The shore broker is unreachable; records stay in the outbox and are sent when the link is back.',
    action: 'Nothing is lost. Check sync.url, the credentials and the satellite link; `plankwatch sync status` shows what is queued.',
  },
  PW_E_SYNC_DAILY_CAP: {
    message: 'The daily sync byte cap (sync.dailyBytes) is reached; sending pauses until midnight UTC.',
    action: 'Records stay queued. Raise sync.dailyBytes if the link allows; `plankwatch sync status` estimates the time to drain.',
  },
  PW_E_SYNC_THUMBNAIL: {
    message: 'A thumbnail could not be made because its image is missing or unreadable; the record goes ashore without it.',
    action: 'Thumbnails need ingest.onProcessed "archive" or "leave" so the image is still on disk.',
  },
  PW_E_SYNC_STATUS_REJECTED: {
    message: 'A shore status was ignored: it is too large, not JSON, has fields of the wrong type, names another instrument, is not newer than the last one, or claims records this ship never sent. Nothing was deleted from the outbox.',
    action: 'Nothing is lost; the records stay queued. The log line\'s reason says which. "over-claim" again and again: something other than the shore ingester publishes on `<sync.topicPrefix>/<instrument.id>/shore-status` (restrict it in the broker ACL, set sync.shoreKeyFile), or this ship\'s database was replaced while the shore still holds the old records of this instrument.id (give the ship a new instrument.id). "stale": the shore clock went back or an old status was replayed.',
  },
  PW_E_SYNC_STATUS_AUTH: {
    message: 'A shore status was ignored: it is unsigned, or its signature does not match the key in sync.shoreKeyFile. Nothing was deleted from the outbox.',
    action: 'Give every shore ingester the same key (shore.statusKeyFile) as the ship (sync.shoreKeyFile). If they have it, someone else publishes on this ship\'s shore-status topic: check the broker ACL (docs/sync.md).',
  },
  PW_E_SYNC_STATUS_NO_KEY: {
    message: 'sync.shoreKeyFile is not set: the shore statuses that let the ship forget records are not authenticated; only the broker ACL keeps others from sending them.',
    action: 'Make a key (openssl rand -hex 32 > FILE), name it in sync.shoreKeyFile on the ship and shore.statusKeyFile on every shore ingester. Until then let only the shore user publish on `<sync.topicPrefix>/+/shore-status` (docs/sync.md).',
  },
  PW_E_SHORE_BATCH: {
    message: 'The shore ingester received a batch it cannot decode; it was acknowledged and dropped.',
    action: 'Check that ships and shore run compatible plankwatch versions. The gap report shows the missing records; the ship resends them.',
  },
  PW_E_SHORE_DB: {
    message: 'The shore database could not be written; the batch is not acknowledged and is retried.',
    action: 'Check shore.sqlitePath or shore.postgresUrl, the disk and the database server. The broker keeps the batch meanwhile.',
  },
  PW_E_EXPORT: {
    message: 'The export could not be written.',
    action: 'Check the --db path (ship or shore database) and that the output folder is writable.',
  },
  PW_E_EXPORT_IMAGE_MISSING: {
    message: 'An image to export is not on disk; its row is exported without the image.',
    action: 'Images are found in ingest.archiveDir (onProcessed "archive") or ingest.watchDir ("leave"); pass --images DIR to look elsewhere.',
  },
  PW_E_EXPORT_EMPTY: {
    message: 'Nothing to export: no ROI matched, or (EcoTaxa) none of those that matched has its image; no file was written.',
    action: 'Check --since, --until and --instrument against what the database holds (`plankwatch counts`, `plankwatch shore gaps`). For EcoTaxa, pass --images DIR where the images are.',
  },
  PW_E_EXPORT_CATEGORY_MAP: {
    message: 'A line of the --category-map file is malformed; nothing was exported.',
    action: 'Fix the line named in the message: each line is a plankwatch label, one tab, then the EcoTaxa category or scientific name. Blank lines and lines starting with # are ignored.',
  },
  PW_E_EXPORT_TAXA: {
    message: 'The class-to-WoRMS mapping (export.taxaFile) is malformed or lacks a class being exported; no Darwin Core Archive was written.',
    action: 'Fix the line named, or add a line for each class named (label, tab, WoRMS scientific name or not-an-organism; see docs/exports.md), then export again.',
  },
  PW_E_EXPORT_INVALID: {
    message: 'The Darwin Core Archive fails a check OBIS or GBIF would make.',
    action: 'Read the problems listed (file, row, term). For an archive plankwatch wrote, fix export.* in the config or export.taxaFile; report it if it persists.',
  },
  PW_E_MODEL_NOT_FOUND: {
    message: 'No ensemble version by that name, or none to roll back to.',
    action: '`plankwatch models list` shows every promoted and candidate ensemble version and the promotion history.',
  },
  PW_E_MODEL_PROMOTE: {
    message: 'The ensemble could not be promoted; the active ensemble stays.',
    action: 'A member folder is missing or fails its checksums (see the message). Re-create the version or promote another one.',
  },
  PW_E_MODEL_ARCHIVE: {
    message: 'A model archive, or a member version checked by `plankwatch models verify`, does not match its manifest or its meta.json checksums; nothing was installed.',
    action: 'The message names the file at fault. Download or copy the archive again (a transfer cut short or a damaged copy), or write a new one with `plankwatch models archive` where the versions are whole. A version already in classify.modelsDir with other files must be removed or renamed first.',
  },
  PW_E_LEARN_LOAD: {
    message: 'The training and model commands (train, average, evaluate, …) could not be loaded: the install is incomplete or damaged.',
    action: 'Reinstall plankwatch (in its folder: `npm ci && npm run build`, or unpack the release again), then run the command again. The message names the file or package that failed to load.',
  },
  PW_E_CAMERA_PROFILE: {
    message: 'An ensemble member cannot serve this camera: it was trained on images its preparation cannot match with the camera\'s (the message says what differs).',
    action: 'Check the camera: section of the config (polarity, colour, pixelSizeUm) against the camera, or train a version of the member on this camera\'s images: `plankwatch train --from models/<member>/<version> --data <export> --polarity … --pixel-size …` (docs/cameras.md).',
  },
  PW_E_ECOTAXA_DATA: {
    message: 'An EcoTaxa export given to --data could not be read, or holds no object to use.',
    action: 'Give the export\'s zip or its unzipped folder (with its ecotaxa_*.tsv and images); the message names the file or row at fault. With no object left, loosen --status, --min-per-class or the --category-map (docs/cameras.md).',
  },
  PW_E_FINETUNE_BUSY: {
    message: 'A fine-tuning run is already in progress.',
    action: 'Wait for it to finish (GET /api/finetune/runs shows its progress), then ask again.',
  },
  PW_E_FINETUNE_FAILED: {
    message: 'A fine-tuning run failed; the active ensemble stays and classification goes on.',
    action: 'Read the reason in GET /api/finetune/runs or the log. Common causes: images of labelled frames deleted (ingest.onProcessed "delete"), disk full under classify.modelsDir.',
  },
  PW_E_FINETUNE_REJECTED: {
    message: 'The fine-tuned candidate did not pass the promotion gate; the active ensemble stays.',
    action: 'Nothing to do: the reason (accuracy or a class recall would drop) is recorded in the run. Check the labels of the classes named; `plankwatch models promote VERSION` overrides the gate.',
  },
  PW_E_FINETUNE_UNMEASURED: {
    message: 'The promotion gate could not measure the classes the active ensemble already knows (too few evaluation images of them); the candidate is kept but not promoted automatically.',
    action: 'Install the shipped reference set (classify.modelsDir/reference, or finetune.referenceData) or confirm more frames of the known classes. To promote by hand, read the candidate\'s figures in `plankwatch models list`, then `plankwatch models promote VERSION`.',
  },
  PW_E_FINETUNE_NO_REPLAY: {
    message: 'No replay images: no high-confidence frames on board yet and no shipped reference set; fine-tuning uses the validated labels alone.',
    action: 'Install the shipped reference set (classify.modelsDir/reference, or finetune.referenceData), or set finetune.replayData to a labelled folder, so that old classes are not forgotten.',
  },
  PW_E_NAV_SENTENCE: {
    message: 'A navigation or CTD sentence was dropped: its checksum is wrong, it is cut short, or a field cannot be read. Counted (plankwatch_nav_bad_sentences_total); nothing else is affected.',
    action: 'A few now and then are line noise. Many: check the serial settings (baud rate, nav.serial), that only NMEA 0183 arrives on the port, and nav.ctd.pattern against a line of the CTD (docs/navigation.md).',
  },
  PW_E_NAV_INPUT: {
    message: 'A navigation input could not be opened, or its connection dropped (UDP port, TCP multiplexer, serial device or logged file); it is retried with a growing delay.',
    action: 'Check the address, port, device or path in nav.* (docs/navigation.md): that the multiplexer is up and reachable, that the daemon user may open the serial device (group dialout) and that no other program holds the UDP port. ROIs stored meanwhile are tagged "held" or "missing".',
  },
  PW_E_NAV_CLOCK: {
    message: 'The navigation time jumped (a fix older than the one before it, or far from the computer\'s clock); fixes are kept at their own times.',
    action: 'Once, after a GPS restart: nothing to do. Often: two receivers with different clocks feed one input, or the GPS has no fix; give each its own input. Check the computer\'s clock (chrony) if ROI times come from arrival.',
  },
  PW_E_NAV_SIDECAR: {
    message: 'A navigation or CTD sidecar file next to an image could not be read or holds no usable value; the ROI is tagged from the live feed instead.',
    action: 'Check the sidecar named in the message against docs/navigation.md (JSON with time, lat, lon, depth_m or pressure_dbar, temperature_c, salinity, volume_m3).',
  },
  PW_E_NAV_STALE: {
    message: 'No navigation or CTD data for longer than nav.maxGapS: ROIs are tagged "held" (last value) or "missing".',
    action: 'Check the GPS, the multiplexer and the CTD, and the cables and network between them and this computer. ROIs are tagged again automatically once data arrives for their times.',
  },
  PW_E_REPLAY: {
    message: '`plankwatch replay` could not read its recording or image folder, or could not send or serve the recording.',
    action: 'Check the paths given; --udp HOST:PORT must name the daemon\'s nav.udp.ports, and the port of --tcp PORT must be free (the daemon connects to it through nav.tcp.endpoints).',
  },
  PW_E_DISK_FULL: {
    message: 'A disk the daemon writes is full (the database, archive or quarantine folder): classification pauses, images wait in the watch folder, nothing is lost.',
    action: 'Free space on the file system named in the message (old archived images, logs) or move store.path / ingest.archiveDir to a larger disk. The daemon tries again every few seconds and resumes by itself, logging once when space is back; /health and plankwatch_disk_full show the state.',
  },
  PW_E_INTERNAL: {
    message: 'An unexpected internal error occurred.',
    action: 'The daemon keeps running where it can. Send the log line with its stack to the developers.',
  },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * Codes that mean the image file itself is at fault (empty, not an image, damaged, too large,
 * unreadable, a link or special file): the file is recorded as a reject and quarantined, and the
 * daemon goes on.
 */
export const IMAGE_FAULT_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'PW_E_IMAGE_EMPTY',
  'PW_E_IMAGE_FORMAT',
  'PW_E_IMAGE_CORRUPT',
  'PW_E_IMAGE_TOO_LARGE',
  'PW_E_IMAGE_UNREADABLE',
  'PW_E_IMAGE_LINK',
  'PW_E_IMAGE_SPECIAL',
]);

/** An error that carries a stable code from the catalogue. */
export class PlankwatchError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;

  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown }) {
    super(`${code}: ${ERRORS[code].message} ${detail}`.trim(), options);
    this.name = 'PlankwatchError';
    this.code = code;
    this.detail = detail;
  }

  /** The remedy a technician should try. */
  get action(): string {
    return ERRORS[this.code].action;
  }
}

export function isPlankwatchError(err: unknown): err is PlankwatchError {
  return err instanceof PlankwatchError;
}

/** errno / SQLite codes that mean "no space": the file system is full, or a quota is reached. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', 'PW_E_DISK_FULL']);

/**
 * True when `err` (or an error it wraps, through `cause`) is a write refused for lack of space:
 * ENOSPC, EDQUOT, SQLite's SQLITE_FULL, or PW_E_DISK_FULL.
 */
export function isDiskFull(err: unknown): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NO_SPACE.has(code)) return true;
  }
  return false;
}
