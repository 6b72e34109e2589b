#ifndef SVC_PROBE_H
#define SVC_PROBE_H

/* GET http://127.0.0.1:port/health: the exit status, 0 on a 200. */
int svc_probe(const char *port);

#endif
