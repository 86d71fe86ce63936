/* msg — the topics on PowerHive's bus and the bodies they carry.
 *
 * Every body is a JSON object inside the bus envelope (hive/bus.h). Readers
 * decode leniently: unknown fields are ignored, a missing or mistyped field
 * the reader needs rejects the message with a message naming the field.
 * Miner ids are lower-case MACs "aa:bb:cc:dd:ee:ff". Times are ms since the
 * epoch. docs/architecture.md has the same list with examples.
 */
#ifndef HIVE_MSG_H
#define HIVE_MSG_H

/* ---- events: daemons PUBLISH, apid SUBSCRIBEs ---- */

/* discoverd: a miner answered /info.
 * {"mac","ip","subnet","model","miner","fw_name","fw_version","hostname"} */
#define HIVE_TOPIC_MINER_SEEN      "hive.miner.seen"
/* discoverd: the API key that works on the miner. {"mac","api_key","created":bool} */
#define HIVE_TOPIC_MINER_KEY       "hive.miner.key"
/* any daemon: something failed for one miner.
 * {"mac" (may be ""), "ip", "op":"discover|unlock|provision|status|telemetry|control",
 *  "kind":<hive_fw_err name>, "http_status":int, "message":str, "job":int (optional)} */
#define HIVE_TOPIC_MINER_ERROR     "hive.miner.error"
/* discoverd: a model's catalogue.
 * {"model","full_name","fw_version","num_chains","chips_per_chain",
 *  "topology":{"rows","cols","chips":[[id|-1,...],...]},
 *  "presets":[{"name","pretty","watts":int|null,"th":num|null,"order":int,"tuned":bool}]} */
#define HIVE_TOPIC_MODEL_CATALOGUE "hive.model.catalogue"
/* discoverd: a subnet's sweep is over; miners of the subnet not listed are
 * offline. {"subnet","macs":[...],"started":ms,"duration_ms","probed","answered","miners"} */
#define HIVE_TOPIC_SWEEP_DONE      "hive.sweep.done"
/* pollerd: a status job's result.
 * {"job","mac","ip","state","state_time","preset":str|null,"preset_pretty",
 *  "hr_realtime_ghs","hr_average_ghs","hr_nominal_ghs","chip_temp_max","pcb_temp_max",
 *  "power_w","power_metered":bool,"fan_duty","fans":[rpm,...],"hw_errors",
 *  "chains":[{"id","state","hr_rt_ghs","freq_mhz","voltage","chip_temp_max","pcb_temp_max",
 *             "red","orange","grey","hw_errors"}],
 *  "pools":{"total","working","accepted","rejected","url","user"},
 *  "switcher":{"enabled":bool,"top_preset":str|null}, "latency_ms"} */
#define HIVE_TOPIC_STATUS_RESULT   "hive.status.result"
/* telemetryd: a telemetry job's result, chips packed per chain as columns.
 * {"job","mac","ip","source":"chains|boards","chains":[{"id","state","hr_realtime_ghs",
 *  "hr_nominal_ghs","freq","chips":{"hr":[...],"freq":[...],"volt":[...],"temp":[...],
 *  "errs":[...],"grade":"rog?..." (one letter per chip),"throttled":"0101..."}}],"latency_ms"} */
#define HIVE_TOPIC_TELEMETRY_RESULT "hive.telemetry.result"
/* a worker finished a job without a result (the error went as
 * hive.miner.error); lets the scheduler free the miner at once.
 * {"job","mac","kind"} */
#define HIVE_TOPIC_JOB_FAILED      "hive.job.failed"
/* every daemon, each intervals.heartbeat_seconds.
 * {"daemon","host","pid","started":ms,"counters":{name:int,...},"in_flight","latency_ms"} */
#define HIVE_TOPIC_HEARTBEAT       "hive.daemon.heartbeat"

/* ---- jobs: apid PUSHes, workers PULL ---- */

/* {"job","mac","ip","port","api_key","deadline":ms} (+ "endpoint":"chains|boards"
 * for telemetry, as apid last learned it) */
#define HIVE_TOPIC_JOB_STATUS      "hive.job.status"
#define HIVE_TOPIC_JOB_TELEMETRY   "hive.job.telemetry"

/* ---- control: REQ → apid's REP ---- */

/* {"mac"} → {"mac","known":bool,"api_key":str|null,"unlock_pass":str|null} */
#define HIVE_TOPIC_CTL_CREDENTIALS "hive.control.credentials"
/* {} → the same document as GET /api/health */
#define HIVE_TOPIC_CTL_HEALTH      "hive.control.health"
/* any refused request → {"error":str} */
#define HIVE_TOPIC_CTL_ERROR       "hive.control.error"

/* ---- feed: apid PUBLISHes what it stored ---- */
/* {"mac", ... the stored row as the API shows it} */
#define HIVE_TOPIC_FEED_MINER      "hive.feed.miner"
#define HIVE_TOPIC_FEED_STATUS     "hive.feed.status"
#define HIVE_TOPIC_FEED_MODEL      "hive.feed.model"

#endif
