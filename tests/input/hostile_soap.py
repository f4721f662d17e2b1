#!/usr/bin/env python3
"""A hostile "vCenter" for the input tests: an HTTPS server that answers
every SOAP request with one kind of bad reply.

  hostile_soap.py MODE CERT KEY PORTFILE
MODE: malformed, truncated, huge (300 MB), deep (100,000 nested elements),
laughs (billion laughs entity expansion), xxe (an external entity naming
/etc/passwd, as the faultstring of a SOAP fault: the text a client prints),
notsoap (valid XML, not a SOAP envelope), empty.
Each request served appends its mode to PORTFILE.served, so a test can tell
a refused reply from a server that was never reached."""
import http.server, socketserver, ssl, sys

mode, cert, key, portfile = sys.argv[1:5]
HEAD = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        '<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval>')
TAIL = '</returnval></RetrieveServiceContentResponse></soapenv:Body></soapenv:Envelope>'

def body():
    if mode == 'malformed':
        return (HEAD + '<about><name>x</nam></about>' + TAIL).encode()
    if mode == 'truncated':
        return (HEAD + '<about><name>VMware vCenter Server</name><fullName>VMw').encode()
    if mode == 'deep':
        return (HEAD + '<a>' * 100000 + '</a>' * 100000 + TAIL).encode()
    if mode == 'laughs':
        ents = '<!ENTITY lol "lol">' + ''.join(
            '<!ENTITY lol%d "%s">' % (i, ('&lol%d;' % (i - 1) if i else '&lol;') * 10) for i in range(10))
        return ('<?xml version="1.0"?><!DOCTYPE lolz [' + ents + ']>'
                '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
                '<x>&lol9;</x></soapenv:Body></soapenv:Envelope>').encode()
    if mode == 'xxe':
        return ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
                '<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>&xxe;</faultstring>'
                '<detail><SystemErrorFault xmlns="urn:vim25"><reason>&xxe;</reason></SystemErrorFault></detail>'
                '</soapenv:Fault></soapenv:Body></soapenv:Envelope>').encode()
    if mode == 'notsoap':
        return b'<?xml version="1.0"?><html><body>proxy error</body></html>'
    if mode == 'empty':
        return b''
    raise SystemExit('unknown mode')

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(portfile + '.served', 'a') as f:
            f.write(mode + '\n')
        if mode == 'huge':
            chunk = b'<x>' + b'A' * 65530 + b'</x>'
            total = 300 * 1024 * 1024
            self.send_response(200)
            self.send_header('Content-Type', 'text/xml')
            self.send_header('Content-Length', str(len(HEAD) + total // len(chunk) * len(chunk) + len(TAIL)))
            self.end_headers()
            try:
                self.wfile.write(HEAD.encode())
                for _ in range(total // len(chunk)):
                    self.wfile.write(chunk)
                self.wfile.write(TAIL.encode())
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            return
        b = body()
        self.send_response(200)
        self.send_header('Content-Type', 'text/xml')
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

srv = S(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(portfile + '.tmp', 'w') as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(portfile + '.tmp', portfile)
srv.serve_forever()
