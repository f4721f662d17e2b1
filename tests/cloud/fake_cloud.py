#!/usr/bin/env python3
"""A contract-faithful fake ABLESTACK cloud (Mold) / CloudStack management
server for the tests, standard library only. It follows
shared/reference/ablestack-cloud-api.md: signatures verified with the
server's rules (sha256 for Mold, sha1, sha512), signatureversion 3 expiry,
the <command>response envelope, empty lists as {}, error objects, async jobs
that stay pending for a number of polls, pagination, and the known quirks:
startvm defaults to true; networks collapse by id; device id 3 is refused;
the root stays DATADISK after deploy; updateVolume without path clears it
(and start then fails); locked or backed disks and sizes out of range are
refused. Fault switches fail the Nth call of a command, replace a MAC on
deploy, leave a job pending forever, answer 503 once, or drop the connection
after a job was accepted. Every request is logged as JSON lines, with its
outcome: "ok", "error CODE", "unsigned" (refused signature), "http503" or
"dropped" (the injected faults), so a test can tell that a fault fired.

  fake_cloud.py --info FILE --pool-dir DIR [--alg sha256|sha1|sha512]
                [--flavour mold|upstream] [--pending N] [--fail CMD:N[:CODE[:TEXT]]]
                [--replace-mac] [--job-never-ends CMD] [--http503-once CMD]
                [--drop-after-accept CMD] [--hold-after-accept CMD] [--page-size N]
                [--log FILE]

--hold-after-accept CMD: the first CMD is carried out, logged with outcome
"held", and its reply comes only 60 s later, so that a test can kill the
client while the call is in flight.

GET /_state returns the objects (for the tests' assertions)."""
import argparse, base64, hashlib, hmac, http.server, json, os, re, socketserver
import subprocess, sys, threading, time, urllib.parse, uuid, datetime

A = argparse.ArgumentParser()
A.add_argument('--info', required=True)
A.add_argument('--pool-dir', required=True)
A.add_argument('--alg', default='sha256')
A.add_argument('--flavour', default='mold')
A.add_argument('--pending', type=int, default=1)
A.add_argument('--fail', action='append', default=[])
A.add_argument('--replace-mac', action='store_true')
A.add_argument('--job-never-ends', default='')
A.add_argument('--http503-once', default='')
A.add_argument('--drop-after-accept', default='')
A.add_argument('--hold-after-accept', default='')
A.add_argument('--page-size', type=int, default=500)
A.add_argument('--log', default='')
A.add_argument('--tls', nargs=2, metavar=('CERT', 'KEY'), help='serve HTTPS with this certificate')
args = A.parse_args()

APIKEY = 'v2kTestKey-' + uuid.uuid4().hex
SECRET = 'v2kTestSecret-' + uuid.uuid4().hex
LOCK = threading.Lock()
CALLS = {}
ONCE = set()

def uid():
    return str(uuid.uuid4())

ZONE = {'id': uid(), 'name': 'Zone-1', 'allocationstate': 'Enabled'}
CLUSTER = uid()
HOST = {'id': uid(), 'name': 'kvm-1', 'state': 'Up', 'resourcestate': 'Enabled', 'hypervisor': 'KVM',
        'zoneid': ZONE['id'], 'clusterid': CLUSTER}
OFFER_FIXED = {'id': uid(), 'name': 'fixed-2c4g', 'cpunumber': 2, 'cpuspeed': 1000, 'memory': 4096,
               'iscustomized': False, 'storagetype': 'shared', 'state': 'Active'}
OFFER_CUSTOM = {'id': uid(), 'name': 'custom', 'iscustomized': True, 'storagetype': 'shared', 'state': 'Active'}
NETWORKS = [{'id': uid(), 'name': n, 'zoneid': ZONE['id'], 'state': 'Implemented', 'type': 'L2'}
            for n in ('net-a', 'net-b', 'net-c')]
POOL_FS = {'id': uid(), 'name': 'Primary FS', 'type': 'Filesystem', 'path': os.path.abspath(args.pool_dir),
           'scope': 'CLUSTER', 'state': 'Up', 'zoneid': ZONE['id'], 'clusterid': CLUSTER}
POOL_RBD = {'id': uid(), 'name': 'Primary RBD', 'type': 'RBD', 'path': 'rbd', 'scope': 'CLUSTER',
            'state': 'Up', 'zoneid': ZONE['id'], 'clusterid': CLUSTER}
S = {'diskofferings': [], 'volumes': [], 'vms': [], 'jobs': {}}

def now():
    return datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%S+0000')

class ApiError(Exception):
    def __init__(self, status, text, cs=4350):
        self.status, self.text, self.cs = status, text, cs

def java_encode(v):
    out = []
    for b in v.encode('utf-8'):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in '.-_*'):
            out.append(c)
        elif c == ' ':
            out.append('%20')
        else:
            out.append('%%%02X' % b)
    return ''.join(out)

def verify_signature(params):
    sig = params.get('signature')
    if not sig:
        return False
    items = sorted((k, v) for k, v in params.items() if k != 'signature')
    s = '&'.join('%s=%s' % (k, java_encode(v)) for k, v in items).lower()
    md = {'sha1': hashlib.sha1, 'sha256': hashlib.sha256, 'sha512': hashlib.sha512}[args.alg]
    want = base64.b64encode(hmac.new(SECRET.encode(), s.encode(), md).digest()).decode()
    if not hmac.compare_digest(want, sig):
        return False
    if params.get('signatureversion') == '3':
        exp = params.get('expires', '')
        try:
            t = datetime.datetime.strptime(exp, '%Y-%m-%dT%H:%M:%S%z')
        except ValueError:
            return False
        if t < datetime.datetime.now(datetime.timezone.utc):
            return False
    return True

def pg(items, p, objname):
    size = min(int(p.get('pagesize', args.page_size)), args.page_size)
    page = int(p.get('page', 1))
    chunk = items[(page - 1) * size: page * size]
    if not items:
        return {}
    r = {'count': len(items)}
    if chunk:
        r[objname] = chunk
    return r

def need(p, *names):
    for n in names:
        if not p.get(n):
            raise ApiError(431, 'Unable to execute API command %s due to missing parameter %s' % (p['command'].lower(), n))

def image_info(path):
    try:
        out = subprocess.run(['qemu-img', 'info', '--output=json', path], capture_output=True, text=True, timeout=30)
    except Exception:
        return None, True
    if out.returncode != 0:
        return None, 'lock' in out.stderr.lower()
    return json.loads(out.stdout), False

def volumes_for_import(pool):
    res = []
    if pool['type'] != 'Filesystem':
        return res
    managed = {v['path'] for v in S['volumes'] if v['storageid'] == pool['id']}
    for f in sorted(os.listdir(pool['path'])):
        full = os.path.join(pool['path'], f)
        if not os.path.isfile(full) or f in managed:
            continue
        info, locked = image_info(full)
        fmt = info['format'] if info else 'raw'
        details = {'IS_LOCKED': 'true' if locked else 'false', 'FILE_FORMAT': fmt}
        if info and info.get('backing-filename'):
            details['BACKING_FILE'] = info['backing-filename']
        size = info['virtual-size'] if info else os.path.getsize(full)
        res.append({'name': f, 'path': f, 'fullpath': full, 'format': fmt, 'size': os.path.getsize(full),
                    'virtualsize': size, 'storageid': pool['id'], 'storage': pool['name'],
                    'storagetype': pool['type'], 'details': details})
    return res

def pool_by_id(i):
    for p in (POOL_FS, POOL_RBD):
        if p['id'] == i:
            return p
    raise ApiError(431, 'Unable to execute API command due to invalid value. Invalid parameter storageid value=%s due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.' % i)

def vol(i):
    for v in S['volumes']:
        if v['id'] == i:
            return v
    raise ApiError(431, 'Unable to find volume with ID: %s' % i)

def vm(i):
    for m in S['vms']:
        if m['id'] == i:
            return m
    raise ApiError(431, 'Unable to find virtual machine with ID: %s' % i)

def job(cmd, instance_type, fn):
    # The work happens when the job is accepted, as on a real server (a
    # client that loses the reply finds the result later); polls still see
    # it pending --pending times. A job that never ends never does its work.
    jid = uid()
    j = {'cmd': cmd, 'polls': 0, 'fn': fn, 'type': instance_type, 'done': None,
         'never': args.job_never_ends.lower() == cmd.lower()}
    S['jobs'][jid] = j
    if not j['never']:
        run_job(j)
    return jid

def run_job(j):
    try:
        j['done'] = (1, j['fn']())
    except ApiError as e:
        j['done'] = (2, {'errorcode': e.status, 'errortext': e.text})

MAC_RE = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')

def c_importVolume(p):
    need(p, 'path', 'storageid')
    pool = pool_by_id(p['storageid'])
    path = p['path']
    if pool['type'] == 'Filesystem':
        if path.startswith('/'):
            if os.path.dirname(path) != pool['path']:
                raise ApiError(530, 'Volume path mismatch: %s is not in the pool directory %s' % (path, pool['path']), 4250)
            path = os.path.basename(path)
        elif '/' in path:
            raise ApiError(530, 'Volume path mismatch: %s' % path, 4250)
    for v in S['volumes']:
        if v['storageid'] == pool['id'] and v['path'] == path:
            raise ApiError(530, 'Volume is already managed by CloudStack: %s' % path, 4250)
    def work():
        cand = [x for x in volumes_for_import(pool) if x['path'] == path]
        if not cand:
            raise ApiError(530, 'Volume %s not found on the storage pool' % path, 4250)
        c = cand[0]
        if c['details']['IS_LOCKED'] == 'true':
            raise ApiError(530, 'Locked volume cannot be imported or unmanaged.', 4250)
        if 'BACKING_FILE' in c['details']:
            raise ApiError(530, 'Volume with backing file cannot be imported or unmanaged.', 4250)
        gib = c['virtualsize'] // (1 << 30)
        if gib < 1 or gib > 1024:
            raise ApiError(431, 'Volume size: %d GB is out of allowed range. Max: 1024 Min:1' % gib)
        v = {'id': uid(), 'name': p.get('name') or path, 'type': 'DATADISK', 'state': 'Ready', 'path': path,
             'storageid': pool['id'], 'storage': pool['name'], 'size': c['virtualsize'], 'virtualsize': c['virtualsize'],
             'format': c['format'], 'diskofferingid': p.get('diskofferingid'), 'zoneid': ZONE['id'],
             'created': now()}
        S['volumes'].append(v)
        return {'volume': dict(v)}
    return {'jobid': job('importVolume', 'Volume', work)}

def vm_response(m):
    r = dict(m)
    r['nic'] = [dict(n) for n in m['nic']]
    return r

def c_deployVirtualMachineForVolume(p):
    need(p, 'zoneid', 'serviceofferingid', 'volumeid')
    if p['zoneid'] != ZONE['id']:
        raise ApiError(431, 'Unable to find zone by id')
    off = {OFFER_FIXED['id']: OFFER_FIXED, OFFER_CUSTOM['id']: OFFER_CUSTOM}.get(p['serviceofferingid'])
    if not off:
        raise ApiError(431, 'Unable to find service offering: %s' % p['serviceofferingid'])
    sizing = [k for k in p if k.lower() in ('details[0].cpunumber', 'details[0].cpuspeed', 'details[0].memory')]
    if sizing and not off['iscustomized']:
        raise ApiError(431, 'cpuNumber or cpuSpeed or memory should not be specified for static service offering')
    if p.get('boottype', '').upper() == 'UEFI' and not p.get('bootmode'):
        raise ApiError(431, 'Boot mode must be specified when boot type is UEFI')
    root = vol(p['volumeid'])
    nets = {}
    i = 0
    while 'iptonetworklist[%d].networkid' % i in p:
        nid = p['iptonetworklist[%d].networkid' % i]
        mac = p.get('iptonetworklist[%d].mac' % i, '').lower()
        if mac and (not MAC_RE.match(mac) or int(mac[:2], 16) & 1):
            raise ApiError(431, 'Mac address is not unicast: %s' % mac)
        if not any(n['id'] == nid for n in NETWORKS):
            raise ApiError(431, 'Unable to find network by id %s' % nid)
        nets[nid] = mac       # keyed by network id: duplicates collapse, as on the real server
        i += 1
    if p.get('networkids') and nets:
        raise ApiError(431, 'iptonetworklist and networkids can not be specified at the same time')
    vid = p.get('customid') or uid()
    if any(m['id'] == vid for m in S['vms']):
        raise ApiError(431, 'A virtual machine with id %s already exists' % vid)
    start = p.get('startvm', 'true').lower() != 'false'
    m = {'id': vid, 'name': p.get('name') or vid, 'displayname': p.get('displayname') or p.get('name'),
         'state': 'Creating', 'zoneid': ZONE['id'], 'serviceofferingid': off['id'], 'hypervisor': 'KVM',
         'details': {}, 'nic': []}
    for k, v in p.items():
        if k.startswith('details[0].'):
            m['details'][k[len('details[0].'):]] = v
    if p.get('boottype'):
        m['boottype'], m['bootmode'] = p['boottype'], p.get('bootmode', '')
    for idx, (nid, mac) in enumerate(nets.items()):
        if args.replace_mac and idx == 0:
            mac = '02:00:00:%02x:%02x:%02x' % (idx, 0xbe, 0xef)
        m['nic'].append({'id': uid(), 'networkid': nid, 'macaddress': mac or '02:00:00:00:00:%02x' % idx,
                         'isdefault': idx == 0, 'deviceid': str(idx)})
    S['vms'].append(m)
    root['virtualmachineid'] = vid
    root['deviceid'] = 0
    def work():
        m['state'] = 'Running' if start else 'Stopped'
        # Mold: the root volume stays DATADISK after deploy.
        return {'virtualmachine': vm_response(m)}
    return {'id': vid, 'jobid': job('deployVirtualMachineForVolume', 'VirtualMachine', work)}

def c_importVm(p):
    need(p, 'zoneid', 'name', 'serviceofferingid', 'importsource', 'storageid', 'diskpath', 'networkid')
    if p.get('hypervisor', '').upper() != 'KVM':
        raise ApiError(431, 'hypervisor must be KVM')
    pool = pool_by_id(p['storageid'])
    path = p['diskpath']
    cand = [x for x in volumes_for_import(pool) if x['path'] == path]
    if not cand:
        raise ApiError(530, 'Disk %s not found on the pool' % path, 4250)
    vid = uid()
    def work():
        v = {'id': uid(), 'name': p['name'] + '-root', 'type': 'ROOT', 'state': 'Ready', 'path': path,
             'storageid': pool['id'], 'size': cand[0]['virtualsize'], 'virtualsize': cand[0]['virtualsize'],
             'virtualmachineid': vid, 'deviceid': 0, 'zoneid': ZONE['id'], 'created': now()}
        S['volumes'].append(v)
        m = {'id': vid, 'name': p['name'], 'displayname': p.get('displayname') or p['name'], 'state': 'Stopped',
             'zoneid': ZONE['id'], 'serviceofferingid': p['serviceofferingid'], 'hypervisor': 'KVM', 'details': {},
             'nic': [{'id': uid(), 'networkid': p['networkid'], 'macaddress': '02:00:00:aa:00:01',
                      'isdefault': True, 'deviceid': '0'}]}
        S['vms'].append(m)
        return {'virtualmachine': vm_response(m)}
    return {'jobid': job('importVm', 'VirtualMachine', work)}

def c_addNicToVirtualMachine(p):
    need(p, 'virtualmachineid', 'networkid')
    m = vm(p['virtualmachineid'])
    def work():
        mac = p.get('macaddress', '').lower() or '02:00:00:00:01:%02x' % len(m['nic'])
        m['nic'].append({'id': uid(), 'networkid': p['networkid'], 'macaddress': mac, 'isdefault': False,
                         'deviceid': str(len(m['nic']))})
        return {'virtualmachine': vm_response(m)}
    return {'jobid': job('addNicToVirtualMachine', 'VirtualMachine', work)}

def c_updateVolume(p):
    need(p, 'id')
    v = vol(p['id'])
    def work():
        if p.get('type'):
            v['type'] = p['type'].upper()
        v['path'] = p.get('path')      # Mold: no path clears it
        return {'volume': dict(v)}
    return {'jobid': job('updateVolume', 'Volume', work)}

def c_attachVolume(p):
    need(p, 'id', 'virtualmachineid')
    v, m = vol(p['id']), vm(p['virtualmachineid'])
    used = {x.get('deviceid') for x in S['volumes'] if x.get('virtualmachineid') == m['id']}
    if p.get('deviceid') is not None and p.get('deviceid') != '':
        dev = int(p['deviceid'])
        if dev == 3 or dev < 0:
            raise ApiError(530, 'deviceId should be 0,1,2,4-32', 4250)
    else:
        dev = next(d for d in range(1, 40) if d != 3 and d not in used)
    if v.get('virtualmachineid'):
        raise ApiError(431, 'Volume %s is already attached' % v['id'])
    def work():
        v['virtualmachineid'] = m['id']
        v['deviceid'] = dev
        return {'volume': dict(v)}
    return {'jobid': job('attachVolume', 'Volume', work)}

def c_detachVolume(p):
    need(p, 'id')
    v = vol(p['id'])
    def work():
        v.pop('virtualmachineid', None)
        v.pop('deviceid', None)
        return {'volume': dict(v)}
    return {'jobid': job('detachVolume', 'Volume', work)}

def c_unmanageVolume(p):
    need(p, 'id')
    v = vol(p['id'])
    if v.get('virtualmachineid'):
        raise ApiError(431, 'Volume %s is attached to a VM' % v['id'])
    def work():
        S['volumes'].remove(v)
        return {'success': True}
    return {'jobid': job('unmanageVolume', 'Volume', work)}

def c_destroyVirtualMachine(p):
    need(p, 'id')
    m = vm(p['id'])
    def work():
        if any(x.get('virtualmachineid') == m['id'] for x in S['volumes']):
            raise ApiError(530, 'VM %s still has volumes' % m['id'], 4250)
        S['vms'].remove(m)
        return {'virtualmachine': dict(m, state='Expunged')}
    return {'jobid': job('destroyVirtualMachine', 'VirtualMachine', work)}

def c_startVirtualMachine(p):
    need(p, 'id')
    m = vm(p['id'])
    def work():
        root = [x for x in S['volumes'] if x.get('virtualmachineid') == m['id'] and x.get('deviceid') == 0]
        if not root or not root[0].get('path'):
            raise ApiError(530, 'Unable to start VM %s: the root volume has no path' % m['id'], 4250)
        m['state'] = 'Running'
        return {'virtualmachine': vm_response(m)}
    return {'jobid': job('startVirtualMachine', 'VirtualMachine', work)}

def c_createDiskOffering(p):
    need(p, 'name', 'displaytext')
    d = {'id': uid(), 'name': p['name'], 'displaytext': p['displaytext'],
         'iscustomized': p.get('customized', 'false') == 'true', 'storagetype': p.get('storagetype', 'shared'),
         'provisioningtype': p.get('provisioningtype', 'thin'), 'cacheMode': p.get('cachemode', 'none'),
         'state': 'Active', 'created': now()}
    S['diskofferings'].append(d)
    return {'diskoffering': d}

def listing(items, objname, p, filters):
    out = items
    for k, f in filters.items():
        if p.get(k):
            out = [x for x in out if str(x.get(f)) == p[k]]
    return pg(out, p, objname)

APIS_MOLD = ['listApis', 'listZones', 'listServiceOfferings', 'listNetworks', 'listStoragePools', 'listHosts',
             'listDiskOfferings', 'createDiskOffering', 'listConfigurations', 'listVolumesForImport', 'importVolume',
             'listVolumes', 'deployVirtualMachineForVolume', 'listVirtualMachines', 'updateVolume', 'attachVolume',
             'detachVolume', 'startVirtualMachine', 'unmanageVolume', 'destroyVirtualMachine',
             'addNicToVirtualMachine', 'queryAsyncJobResult']
APIS = APIS_MOLD if args.flavour == 'mold' else [a for a in APIS_MOLD if a != 'deployVirtualMachineForVolume'] + ['importVm']

def dispatch(p):
    cmd = p['command']
    if cmd not in APIS:
        raise ApiError(401, 'unable to verify user credentials and/or request signature')
    if cmd == 'listApis':
        names = [a for a in APIS if not p.get('name') or a == p['name']]
        if not names:
            raise ApiError(530, 'Api Discovery plugin was unable to find an api by that name or process any apis', 9999)
        return pg([{'name': a, 'isasync': a[0:4] not in ('list', 'quer', 'crea')} for a in names], p, 'api')
    if cmd == 'listZones':
        return listing([ZONE], 'zone', p, {'id': 'id'})
    if cmd == 'listServiceOfferings':
        return listing([OFFER_FIXED, OFFER_CUSTOM], 'serviceoffering', p, {'id': 'id'})
    if cmd == 'listNetworks':
        return listing(NETWORKS, 'network', p, {'id': 'id'})
    if cmd == 'listStoragePools':
        return listing([POOL_FS, POOL_RBD], 'storagepool', p, {'id': 'id'})
    if cmd == 'listHosts':
        return listing([HOST], 'host', p, {'id': 'id'})
    if cmd == 'listDiskOfferings':
        return listing(S['diskofferings'], 'diskoffering', p, {'id': 'id', 'name': 'name'})
    if cmd == 'listConfigurations':
        cfg = [{'name': 'custom.diskoffering.size.min', 'value': '1'},
               {'name': 'custom.diskoffering.size.max', 'value': '1024'}]
        return listing(cfg, 'configuration', p, {'name': 'name'})
    if cmd == 'listVolumesForImport':
        need(p, 'storageid')
        items = volumes_for_import(pool_by_id(p['storageid']))
        if p.get('path'):
            items = [x for x in items if x['path'] == p['path']]
        return pg(items, p, 'volumeforimport')
    if cmd == 'listVolumes':
        return listing(S['volumes'], 'volume', p, {'id': 'id', 'name': 'name', 'virtualmachineid': 'virtualmachineid',
                                                   'storageid': 'storageid'})
    if cmd == 'listVirtualMachines':
        return listing([vm_response(m) for m in S['vms']], 'virtualmachine', p, {'id': 'id', 'name': 'name'})
    if cmd == 'queryAsyncJobResult':
        need(p, 'jobid')
        j = S['jobs'].get(p['jobid'])
        if not j:
            raise ApiError(431, 'Unable to find job %s' % p['jobid'])
        j['polls'] += 1
        base = {'jobid': p['jobid'], 'cmd': j['cmd'], 'jobprocstatus': 0, 'jobinstancetype': j['type'], 'created': now()}
        if j['never'] or (j['done'] is None and j['polls'] <= args.pending):
            return dict(base, jobstatus=0, jobresultcode=0)
        if j['done'] is None:
            run_job(j)
        st, res = j['done']
        return dict(base, jobstatus=st, jobresultcode=0 if st == 1 else 530, jobresulttype='object', jobresult=res)
    fn = globals().get('c_' + cmd)
    return fn(p)

def should_fail(cmd):
    n = CALLS.get(cmd, 0)
    for f in args.fail:
        parts = f.split(':', 3)
        if parts[0] == cmd and int(parts[1]) == n:
            code = int(parts[2]) if len(parts) > 2 else 530
            text = parts[3] if len(parts) > 3 else 'injected failure of %s call %d' % (cmd, n)
            raise ApiError(code, text, 4250)

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def reply(self, status, obj, desc=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=UTF-8')
        self.send_header('Content-Length', str(len(body)))
        if desc:
            self.send_header('X-Description', desc)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == '/_state':
            with LOCK:
                st = {'volumes': S['volumes'], 'vms': S['vms'], 'diskofferings': S['diskofferings'],
                      'zone': ZONE, 'offer_fixed': OFFER_FIXED, 'offer_custom': OFFER_CUSTOM, 'networks': NETWORKS,
                      'pool_fs': POOL_FS, 'pool_rbd': POOL_RBD, 'host': HOST,
                      'jobs': {k: {'cmd': v['cmd'], 'polls': v['polls'], 'status': v['done'][0] if v['done'] else 0}
                               for k, v in S['jobs'].items()}}
            return self.reply(200, st)
        self.handle_api(urllib.parse.urlsplit(self.path).query, 'GET')

    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0))
        self.handle_api(self.rfile.read(n).decode(), 'POST')

    def handle_api(self, qs, method):
        pairs = urllib.parse.parse_qsl(qs, keep_blank_values=True)
        p = {}
        for k, v in pairs:
            p.setdefault(k, v)
        cmd = p.get('command', '')
        key = cmd.lower() + 'response'
        with LOCK:
            CALLS[cmd] = CALLS.get(cmd, 0) + 1
            shown = {k: v for k, v in p.items() if k not in ('signature', 'apiKey', 'apikey', 'expires')}

            def log(outcome):
                if args.log:
                    with open(args.log, 'a') as f:
                        f.write(json.dumps({'command': cmd, 'method': method, 'params': shown, 'n': CALLS[cmd],
                                            'outcome': outcome}) + '\n')
            if not verify_signature(p) or p.get('apiKey', p.get('apikey')) != APIKEY:
                log('unsigned')
                return self.reply(401, {key: {'uuidList': [], 'errorcode': 401,
                                              'errortext': 'unable to verify user credentials and/or request signature'}})
            if cmd == args.http503_once and cmd not in ONCE:
                ONCE.add(cmd)
                log('http503')
                self.send_response(503)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            try:
                should_fail(cmd)
                r = dispatch(p)
            except ApiError as e:
                log('error %d' % e.status)
                return self.reply(e.status, {key: {'uuidList': [], 'errorcode': e.status, 'cserrorcode': e.cs,
                                                   'errortext': e.text}}, e.text)
            except Exception:
                log('server bug')
                raise
            if cmd == args.drop_after_accept and cmd + '#drop' not in ONCE:
                ONCE.add(cmd + '#drop')
                log('dropped')
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if cmd == args.hold_after_accept and cmd + '#hold' not in ONCE:
                ONCE.add(cmd + '#hold')
                log('held')
            else:
                log('ok')
                return self.reply(200, {key: r})
        # Done, and the reply held back without the lock: the client is
        # meant to die waiting for it.
        time.sleep(60)
        try:
            return self.reply(200, {key: r})
        except OSError:
            return None

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

srv = Server(('127.0.0.1', 0), H)
scheme = 'http'
if args.tls:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls[0], args.tls[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    scheme = 'https'
info = {'url': '%s://127.0.0.1:%d/client/api' % (scheme, srv.server_address[1]), 'apikey': APIKEY, 'secretkey': SECRET,
        'zone': ZONE['id'], 'offer_fixed': OFFER_FIXED['id'], 'offer_custom': OFFER_CUSTOM['id'],
        'networks': [n['id'] for n in NETWORKS], 'pool_fs': POOL_FS['id'], 'pool_rbd': POOL_RBD['id'],
        'host': HOST['id'], 'pid': os.getpid()}
tmp = args.info + '.tmp'
with open(tmp, 'w') as f:
    json.dump(info, f)
os.rename(tmp, args.info)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
