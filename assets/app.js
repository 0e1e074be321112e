// LeadMaster operator page: plain ES module, no build step.
// Talks to the admin API (same origin) with a bearer token and follows the
// live event stream (SSE). The QR is never polled: it is fetched when a
// session event says a (new) one exists.

// ---------- i18n ----------

const DICT = {
  es: {
    skip: 'Saltar al contenido', signout: 'Salir', switchto: 'Switch to English',
    'login.title': 'Ingresar', 'login.token': 'Token de acceso',
    'login.hint': 'El token lo imprime LeadMaster al arrancar (o el enlace de make demo).',
    'login.submit': 'Entrar', 'login.bad': 'Token inválido.',
    'clientes.title': 'Clientes', 'clientes.new': 'Nuevo cliente', 'clientes.id': 'Identificador',
    'clientes.nombre': 'Nombre', 'clientes.region': 'País por defecto (ISO)', 'clientes.create': 'Crear',
    'clientes.none': 'Todavía no hay clientes.',
    'session.title': 'Sesión de WhatsApp',
    'session.qrhelp': 'En el teléfono: WhatsApp › Dispositivos vinculados › Vincular un dispositivo, y escaneá este código.',
    'session.qralt': 'Código QR para vincular WhatsApp',
    'session.demoscan': 'Escanear con el teléfono simulado', 'session.qrretry': 'Pedir el código QR',
    'session.start': 'Conectar', 'session.pairphone': 'Vincular con código: teléfono', 'session.pair': 'Pedir código',
    'session.paircode': 'Código para escribir en el teléfono: {code}',
    'session.logout': 'Cerrar sesión de WhatsApp', 'session.logoutq': '¿Cerrar la sesión de WhatsApp de este cliente? Dejará de enviar hasta que se vuelva a vincular.',
    'session.waitingqr': 'Esperando el código QR…', 'session.qrtimeout': 'El código QR no llegó a tiempo.',
    'session.device': 'Dispositivo: {jid}', 'session.since': 'desde {at}',
    'session.scanned': 'Escaneado: esperando la confirmación…',
    'send.paused': 'Envíos en pausa: {why}{until}.', 'send.until': ' hasta {at}',
    'why.sesion': 'la sesión de WhatsApp no está conectada', 'why.cortacircuito': 'demasiados fallos seguidos; el número descansa',
    'why.bloqueo_nuevos': 'WhatsApp bloqueó los contactos nuevos', 'why.almacenamiento': 'no se puede escribir el archivo de datos',
    'why.disco_lleno': 'queda poco espacio en el disco de datos', 'why.ventana': 'fuera del horario de la campaña',
    'why.cupo_diario': 'se usó el cupo diario de la campaña', 'why.tope_por_hora': 'se alcanzó el tope por hora del número',
    'why.tope_diario': 'se alcanzó el tope diario del número', 'campaigns.waits': 'Esperando: {why}{until}',
    'why.script': 'el script de la campaña la hace esperar',
    'session.reach': 'WhatsApp bloqueó los contactos nuevos de este número hasta {until}: solo se envía a quienes ya tienen un chat; el resto espera, sin reintentos.',
    'sess.INITIALIZING': 'Iniciando', 'sess.QR_REQUIRED': 'Esperando el escaneo', 'sess.READY': 'Conectada',
    'sess.DISCONNECTED': 'Desconectada, reconectando', 'sess.LOGGED_OUT': 'Sesión cerrada',
    'sess.REPLACED': 'Reemplazada por otro dispositivo', 'sess.ERROR': 'Error',
    'campaigns.title': 'Campañas', 'campaigns.new': 'Nueva campaña', 'campaigns.none': 'Todavía no hay campañas.',
    'campaigns.progress': '{done} de {total} procesados ({pct} %)',
    'camp.borrador': 'Borrador', 'camp.activa': 'Activa', 'camp.pausada': 'Pausada', 'camp.terminada': 'Terminada', 'camp.cancelada': 'Cancelada',
    'st.pendiente': 'Pendientes', 'st.enviando': 'Enviando', 'st.enviado': 'Enviados', 'st.entregado': 'Entregados',
    'st.leido': 'Leídos', 'st.fallido': 'Fallidos', 'st.omitido': 'Omitidos', 'st.cancelado': 'Cancelados',
    'act.start': 'Iniciar', 'act.pause': 'Pausar', 'act.resume': 'Reanudar', 'act.cancel': 'Cancelar', 'act.edit': 'Editar',
    'act.cancelq': '¿Cancelar la campaña? Los envíos pendientes no se enviarán.',
    'counts.title': 'Envíos por estado', 'chart.title': 'Enviados, entregados y leídos (acumulado)', 'chart.sent': 'Enviados', 'chart.delivered': 'Entregados', 'chart.read': 'Leídos',
    'chart.empty': 'Todavía no se envió nada.',
    'chart.summary': 'Gráfico: {sent} enviados, {delivered} entregados y {read} leídos entre {from} y {to}.',
    'upload.title': 'Cargar contactos (CSV)', 'upload.file': 'Archivo CSV o JSON (columnas: telefono, nombre y variables)',
    'upload.submit': 'Subir', 'upload.sending': 'Subida del archivo', 'upload.importing': 'Importación',
    'upload.rows': 'Importación: {rows} filas leídas', 'upload.failed': 'La importación falló: {error}',
    'report.title': 'Resultado de la importación', 'report.filas': 'Filas', 'report.aceptados': 'Aceptados',
    'report.duplicados': 'Duplicados', 'report.suprimidos': 'Suprimidos (bajas)', 'report.rechazados': 'Rechazados',
    'report.rechazos': 'Filas rechazadas', 'report.omitidos': 'Filas omitidas', 'report.linea': 'Línea',
    'report.motivo': 'Motivo', 'report.telefono': 'Teléfono',
    'envios.title': 'Envíos', 'envios.filter': 'Estado', 'envios.all': 'Todos', 'envios.show': 'Mostrar',
    'envios.more': 'Más', 'envios.none': 'No hay envíos.', 'envios.nombre': 'Nombre', 'envios.estado': 'Estado',
    'envios.intentos': 'Intentos',
    'editor.title': 'Editor de campaña', 'editor.message': 'Mensaje', 'editor.id': 'Identificador', 'editor.nombre': 'Nombre',
    'editor.plantilla': 'Plantilla', 'editor.plantillahint': 'Usá {{nombre}} y las columnas del CSV; {Hola|Buen día} elige una variante.',
    'editor.script': 'Script Lua (opcional)', 'editor.sample': 'Vista previa con una fila de ejemplo',
    'editor.pvtel': 'Teléfono', 'editor.pvnombre': 'Nombre', 'editor.pvvars': 'Variables (una por línea: clave=valor)',
    'editor.preview': 'Vista previa:', 'editor.schedule': 'Programación', 'editor.days': 'Días',
    'editor.desde': 'Desde (hora)', 'editor.hasta': 'Hasta (hora)', 'editor.zona': 'Zona horaria', 'editor.cupo': 'Cupo diario',
    'editor.rate': 'Ritmo', 'editor.min': 'Pausa mínima (s)', 'editor.max': 'Pausa máxima (s)', 'editor.hora': 'Máximo por hora',
    'editor.dia': 'Máximo por día', 'editor.intentos': 'Intentos máximos', 'editor.save': 'Guardar', 'editor.close': 'Cerrar',
    'editor.saved': 'Campaña guardada.', 'editor.line': 'Línea {line}: {message}', 'editor.skipped': '(el script omite esta fila)',
    'editor.savefirst': 'Guardá la campaña para ver la vista previa.',
    days: ['Dom', 'Lun', 'Mar', 'Mié', 'Jue', 'Vie', 'Sáb'],
    'replies.title': 'Respuestas y bajas', 'replies.none': 'Sin respuestas todavía.', 'replies.baja': 'Baja',
    'replies.when': 'Cuándo', 'replies.telefono': 'Teléfono', 'replies.texto': 'Mensaje',
    'journal.title': 'Diario (últimos registros)', 'journal.none': 'Sin registros.',
    'journal.kind': 'Tipo', 'journal.cliente': 'Cliente', 'journal.envio': 'Envío', 'journal.change': 'Cambio',
    'live.on': 'En vivo', 'live.off': 'Sin conexión en vivo: reintentando…',
    'err.network': 'No se pudo contactar al servidor.', actions: 'Acciones',
  },
  en: {
    skip: 'Skip to content', signout: 'Sign out', switchto: 'Cambiar a español',
    'login.title': 'Sign in', 'login.token': 'Access token',
    'login.hint': 'LeadMaster prints the token when it starts (or the make demo link).',
    'login.submit': 'Sign in', 'login.bad': 'Invalid token.',
    'clientes.title': 'Clients', 'clientes.new': 'New client', 'clientes.id': 'Identifier',
    'clientes.nombre': 'Name', 'clientes.region': 'Default country (ISO)', 'clientes.create': 'Create',
    'clientes.none': 'No clients yet.',
    'session.title': 'WhatsApp session',
    'session.qrhelp': 'On the phone: WhatsApp › Linked devices › Link a device, and scan this code.',
    'session.qralt': 'QR code to link WhatsApp',
    'session.demoscan': 'Scan with the simulated phone', 'session.qrretry': 'Get the QR code',
    'session.start': 'Connect', 'session.pairphone': 'Link with a code: phone', 'session.pair': 'Get code',
    'session.paircode': 'Code to type on the phone: {code}',
    'session.logout': 'Log out of WhatsApp', 'session.logoutq': 'Log this client out of WhatsApp? It stops sending until linked again.',
    'session.waitingqr': 'Waiting for the QR code…', 'session.qrtimeout': 'The QR code did not arrive in time.',
    'session.device': 'Device: {jid}', 'session.since': 'since {at}',
    'session.scanned': 'Scanned: waiting for confirmation…',
    'send.paused': 'Sending paused: {why}{until}.', 'send.until': ' until {at}',
    'why.sesion': 'the WhatsApp session is not connected', 'why.cortacircuito': 'too many failures in a row; the number rests',
    'why.bloqueo_nuevos': 'WhatsApp locked new contacts', 'why.almacenamiento': 'the data file cannot be written',
    'why.disco_lleno': 'the data disk is almost full', 'why.ventana': 'outside the campaign\'s hours',
    'why.cupo_diario': 'the campaign\'s daily quota is used', 'why.tope_por_hora': 'the number\'s hourly cap is reached',
    'why.tope_diario': 'the number\'s daily cap is reached', 'campaigns.waits': 'Waiting: {why}{until}',
    'why.script': 'the campaign\'s script holds it',
    'session.reach': 'WhatsApp locked this number out of new contacts until {until}: only recipients with a chat are sent to; the rest wait, without retries.',
    'sess.INITIALIZING': 'Starting', 'sess.QR_REQUIRED': 'Waiting for scan', 'sess.READY': 'Connected',
    'sess.DISCONNECTED': 'Disconnected, reconnecting', 'sess.LOGGED_OUT': 'Logged out',
    'sess.REPLACED': 'Replaced by another device', 'sess.ERROR': 'Error',
    'campaigns.title': 'Campaigns', 'campaigns.new': 'New campaign', 'campaigns.none': 'No campaigns yet.',
    'campaigns.progress': '{done} of {total} processed ({pct} %)',
    'camp.borrador': 'Draft', 'camp.activa': 'Running', 'camp.pausada': 'Paused', 'camp.terminada': 'Finished', 'camp.cancelada': 'Cancelled',
    'st.pendiente': 'Pending', 'st.enviando': 'Sending', 'st.enviado': 'Sent', 'st.entregado': 'Delivered',
    'st.leido': 'Read', 'st.fallido': 'Failed', 'st.omitido': 'Skipped', 'st.cancelado': 'Cancelled',
    'act.start': 'Start', 'act.pause': 'Pause', 'act.resume': 'Resume', 'act.cancel': 'Cancel', 'act.edit': 'Edit',
    'act.cancelq': 'Cancel the campaign? Pending messages will not be sent.',
    'counts.title': 'Messages by state', 'chart.title': 'Sent, delivered and read (cumulative)', 'chart.sent': 'Sent', 'chart.delivered': 'Delivered', 'chart.read': 'Read',
    'chart.empty': 'Nothing sent yet.',
    'chart.summary': 'Chart: {sent} sent, {delivered} delivered and {read} read between {from} and {to}.',
    'upload.title': 'Upload contacts (CSV)', 'upload.file': 'CSV or JSON file (columns: telefono, nombre and variables)',
    'upload.submit': 'Upload', 'upload.sending': 'File upload', 'upload.importing': 'Import',
    'upload.rows': 'Import: {rows} rows read', 'upload.failed': 'The import failed: {error}',
    'report.title': 'Import result', 'report.filas': 'Rows', 'report.aceptados': 'Accepted',
    'report.duplicados': 'Duplicates', 'report.suprimidos': 'Suppressed (opt-outs)', 'report.rechazados': 'Rejected',
    'report.rechazos': 'Rejected rows', 'report.omitidos': 'Skipped rows', 'report.linea': 'Line',
    'report.motivo': 'Reason', 'report.telefono': 'Phone',
    'envios.title': 'Messages', 'envios.filter': 'State', 'envios.all': 'All', 'envios.show': 'Show',
    'envios.more': 'More', 'envios.none': 'No messages.', 'envios.nombre': 'Name', 'envios.estado': 'State',
    'envios.intentos': 'Attempts',
    'editor.title': 'Campaign editor', 'editor.message': 'Message', 'editor.id': 'Identifier', 'editor.nombre': 'Name',
    'editor.plantilla': 'Template', 'editor.plantillahint': 'Use {{nombre}} and the CSV columns; {Hi|Hello} picks a variant.',
    'editor.script': 'Lua script (optional)', 'editor.sample': 'Preview on a sample row',
    'editor.pvtel': 'Phone', 'editor.pvnombre': 'Name', 'editor.pvvars': 'Variables (one per line: key=value)',
    'editor.preview': 'Preview:', 'editor.schedule': 'Schedule', 'editor.days': 'Days',
    'editor.desde': 'From (hour)', 'editor.hasta': 'Until (hour)', 'editor.zona': 'Time zone', 'editor.cupo': 'Daily quota',
    'editor.rate': 'Pace', 'editor.min': 'Minimum delay (s)', 'editor.max': 'Maximum delay (s)', 'editor.hora': 'Maximum per hour',
    'editor.dia': 'Maximum per day', 'editor.intentos': 'Maximum attempts', 'editor.save': 'Save', 'editor.close': 'Close',
    'editor.saved': 'Campaign saved.', 'editor.line': 'Line {line}: {message}', 'editor.skipped': '(the script skips this row)',
    'editor.savefirst': 'Save the campaign to see the preview.',
    days: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'],
    'replies.title': 'Replies and opt-outs', 'replies.none': 'No replies yet.', 'replies.baja': 'Opt-out',
    'replies.when': 'When', 'replies.telefono': 'Phone', 'replies.texto': 'Message',
    'journal.title': 'Journal (latest records)', 'journal.none': 'No records.',
    'journal.kind': 'Kind', 'journal.cliente': 'Client', 'journal.envio': 'Message', 'journal.change': 'Change',
    'live.on': 'Live', 'live.off': 'Live updates lost: retrying…',
    'err.network': 'Could not reach the server.', actions: 'Actions',
  },
};

let lang = localStorage.getItem('lm.lang') || 'es';

function t(key, vars) {
  let s = DICT[lang][key] ?? DICT.es[key] ?? key;
  if (vars && typeof s === 'string') s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

function applyLang() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const b = $('#lang');
  b.textContent = lang === 'es' ? 'EN' : 'ES';
  b.setAttribute('aria-label', t('switchto'));
  b.setAttribute('lang', lang === 'es' ? 'en' : 'es');
  $('#qr-img').alt = t('session.qralt');
  document.querySelector('.actions[role=group]').setAttribute('aria-label', t('actions'));
}

// ---------- DOM helpers ----------

const $ = (sel) => document.querySelector(sel);

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k != null) el.append(k instanceof Node ? k : String(k));
  return el;
}

function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return '';
  return d.toLocaleString(lang === 'es' ? 'es-AR' : 'en-US', { dateStyle: 'short', timeStyle: 'medium' });
}

const nf = () => new Intl.NumberFormat(lang === 'es' ? 'es-AR' : 'en-US');

let toastTimer;
function toast(msg, kind = 'error') {
  if (!token) return; // signed out: late answers of the old login say nothing
  const el = $('#toast');
  el.textContent = msg;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

// debounce returns fn delayed by ms; repeated calls within ms fold into one.
function debounce(fn, ms) {
  let timer = null;
  return (...a) => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(...a); }, ms);
  };
}

// ---------- API ----------

class APIError extends Error {
  constructor(status, code, message, extra) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.extra = extra || {};
  }
}

let token = '';

async function api(method, path, body, opts = {}) {
  const used = token; // a late answer to a request of an earlier login must not sign the new one out
  if (!used) throw new APIError(401, 'unauthorized', t('login.bad'));
  const headers = { Authorization: `Bearer ${used}` };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, signal: opts.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, 'network', t('err.network'));
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new APIError(res.status, e.code, e.message || (typeof data === 'string' ? data : ''), e);
    if (res.status === 401 && !opts.noLogout && used === token) signOut(t('login.bad'));
    throw err;
  }
  return data;
}

const enc = encodeURIComponent;
const clientePath = (id) => `/api/clientes/${enc(id)}`;
const campPath = (cl, cid) => `${clientePath(cl)}/campaigns/${enc(cid)}`;

// ---------- state ----------

const ST = ['pendiente', 'enviando', 'enviado', 'entregado', 'leido', 'fallido', 'omitido', 'cancelado'];

const S = {
  me: null,
  clientes: [],
  cliente: null, // id
  session: null,
  qrShown: '', // the qr string whose image is displayed
  qrWanted: '', // the newest qr announced by a session event
  qrSeq: 0,
  qrAbort: null,
  campaigns: [], // campaign JSON
  stats: {}, // cid -> stats
  camp: null, // selected campaign id
  chart: {}, // cid -> {sent:[], delivered:[], read:[], ready}
  events: null,
  journalSeq: 0,
  journal: [],
  editing: null, // campaign id being edited, '' for a new one
  enviosNext: '',
};

// ---------- login ----------

function takeHashToken() {
  const m = location.hash.match(/[#&]token=([^&]+)/);
  if (!m) return;
  sessionStorage.setItem('lm.token', decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search);
}

function signOut(msg) {
  token = '';
  sessionStorage.removeItem('lm.token');
  if (S.events) S.events.close();
  S.events = null;
  $('#app').hidden = true;
  $('#signout').hidden = true;
  $('#who').textContent = '';
  $('#conn').textContent = '';
  delete $('#conn').dataset.live;
  $('#token').value = '';
  $('#login').hidden = false;
  $('#login-error').textContent = msg || '';
  $('#token').focus();
}

async function signIn(tok) {
  token = tok;
  let me;
  try {
    me = await api('GET', '/api/me', undefined, { noLogout: true });
  } catch (e) {
    token = '';
    sessionStorage.removeItem('lm.token');
    $('#login').hidden = false;
    $('#login-error').textContent = e.status === 401 || e.status === 403 ? t('login.bad') : e.message;
    return;
  }
  sessionStorage.setItem('lm.token', tok);
  S.me = me;
  $('#login').hidden = true;
  $('#login-error').textContent = '';
  $('#app').hidden = false;
  $('#signout').hidden = false;
  $('#who').textContent = me.role === 'admin' ? 'admin' : me.cliente || '';
  $('#cliente-new').hidden = me.role !== 'admin';
  $('#journal-sec').hidden = me.role !== 'admin';
  await loadClientes();
  const want = me.demo_cliente || me.cliente || sessionStorage.getItem('lm.cliente');
  const pick = S.clientes.find((c) => c.id === want) || S.clientes[0];
  $('.content').hidden = !pick;
  if (!pick && me.role === 'admin') { $('#cliente-new').open = true; $('#cl-id').focus(); }
  if (pick) await selectCliente(pick.id);
  if (me.role === 'admin') loadJournal();
}

// ---------- clientes ----------

async function loadClientes() {
  try {
    const list = await api('GET', '/api/clientes');
    S.clientes = Array.isArray(list) ? list : list.items || list.clientes || [];
  } catch (e) {
    if (S.me.cliente) S.clientes = [{ id: S.me.cliente, nombre: S.me.cliente }];
    else toast(e.message);
  }
  renderClientes();
}

function renderClientes() {
  const ul = $('#clientes');
  ul.replaceChildren();
  if (!S.clientes.length) ul.append(h('li', { class: 'muted', text: t('clientes.none') }));
  for (const c of S.clientes) {
    ul.append(h('li', {}, h('button', {
      type: 'button', class: 'link', 'data-cliente': c.id,
      'aria-current': c.id === S.cliente ? 'true' : null,
      onclick: () => selectCliente(c.id),
    }, c.nombre || c.id, ' ', h('span', { class: 'muted', text: c.nombre && c.nombre !== c.id ? `(${c.id})` : '' }))));
  }
}

async function selectCliente(id) {
  S.cliente = id;
  $('.content').hidden = false;
  sessionStorage.setItem('lm.cliente', id);
  S.session = null;
  cancelQR(); // a QR request of the previous cliente
  S.camp = null;
  S.campaigns = [];
  S.stats = {};
  S.chart = {};
  $('#campaign').hidden = true;
  $('#editor').hidden = true;
  $('#pair-code').textContent = '';
  $('#import-report').replaceChildren();
  const c = S.clientes.find((x) => x.id === id);
  $('#cliente-name').textContent = c ? `· ${c.nombre || c.id}` : `· ${id}`;
  renderClientes();
  connectEvents();
  await Promise.all([loadSession(), loadCampaigns(), loadReplies()]);
}

// ---------- live events ----------

function connectEvents() {
  if (S.events) S.events.close();
  const url = `/api/events?cliente=${enc(S.cliente)}&token=${enc(token)}`;
  const es = new EventSource(url);
  S.events = es;
  // The first open resyncs too: the page loaded its state while the
  // stream was connecting, and a change in between comes as no event.
  let lost = true;
  const resync = () => { // reload what events we missed would have changed
    loadSession();
    loadCampaigns();
    loadReplies();
  };
  es.onopen = () => {
    $('#conn').textContent = t('live.on');
    $('#conn').dataset.live = 'on';
    if (lost) {
      lost = false;
      resync();
    }
  };
  es.onerror = () => {
    lost = true;
    $('#conn').textContent = t('live.off');
    $('#conn').dataset.live = 'off';
  };
  const on = (type, fn) => es.addEventListener(type, (m) => {
    let d;
    try { d = JSON.parse(m.data); } catch { return; }
    if (d.cliente && d.cliente !== S.cliente) return;
    fn(d);
  });
  on('session', (d) => onSession(d.session || d));
  on('envio', onEnvio);
  on('campaign', onCampaign);
  on('reply', () => reloadReplies());
  on('reach', (d) => renderReach(d.reach));
  on('sending', (d) => renderSending(d.sending));
  es.addEventListener('lost', resync); // the server dropped events this page read too slowly
  es.onmessage = (m) => { // unnamed events: dispatch on type
    let d;
    try { d = JSON.parse(m.data); } catch { return; }
    if (d.cliente && d.cliente !== S.cliente) return;
    if (d.type === 'session') onSession(d.session || d);
    else if (d.type === 'envio') onEnvio(d);
    else if (d.type === 'campaign') onCampaign(d);
    else if (d.type === 'reply') reloadReplies();
    else if (d.type === 'reach') renderReach(d.reach);
    else if (d.type === 'sending') renderSending(d.sending);
  };
}

// ---------- session & QR ----------

async function loadSession() {
  const id = S.cliente;
  try {
    const s = await api('GET', `${clientePath(id)}/session`);
    if (id === S.cliente) {
      onSession(s, true);
      renderReach(s.nuevos_contactos || null);
      renderSending(s.envios || null);
    }
  } catch (e) {
    if (id !== S.cliente) return;
    renderSession({ cliente: id, estado: 'ERROR', error: e.message });
  }
}

function onSession(s, initial) {
  if (!s || (s.cliente && s.cliente !== S.cliente)) return;
  const prev = S.session;
  S.session = s;
  renderSession(s);
  const needsQR = s.estado === 'QR_REQUIRED' || (initial && s.estado === 'INITIALIZING' && !s.jid);
  if (s.estado === 'READY') {
    cancelQR();
  } else if (needsQR) {
    // A new QR (rotation), or none shown yet: fetch its image once. A
    // request already waiting answers with the QR current when it returns;
    // fetchQR compares that with the newest one announced.
    if (s.qr) S.qrWanted = s.qr;
    if (!S.qrAbort && (!s.qr || s.qr !== S.qrShown || !prev)) fetchQR();
  }
  if (s.estado === 'READY' && prev && prev.estado !== 'READY') {
    for (const c of S.campaigns) scheduleStats(c.id);
  }
  if (S.me && S.me.role === 'admin') reloadJournal();
}

function cancelQR() {
  if (S.qrAbort) S.qrAbort.abort();
  S.qrAbort = null;
  S.qrShown = '';
  S.qrWanted = '';
  $('#qr-box').hidden = true;
  $('#qr-img').removeAttribute('src');
  $('#qr-retry').hidden = true;
}

async function fetchQR() {
  const id = S.cliente;
  if (S.qrAbort) S.qrAbort.abort();
  const ctl = new AbortController();
  S.qrAbort = ctl;
  const seq = ++S.qrSeq;
  $('#qr-retry').hidden = true;
  $('#session-info').textContent = t('session.waitingqr');
  try {
    const r = await api('GET', `${clientePath(id)}/session/qr?format=json&timeout=20s`, undefined, { signal: ctl.signal });
    if (seq !== S.qrSeq || id !== S.cliente) return;
    if (S.session && S.session.estado === 'READY') return;
    S.qrShown = r.qr || '';
    if (S.qrWanted && r.qr && S.qrWanted !== r.qr) setTimeout(fetchQR, 0); // rotated meanwhile
    const img = $('#qr-img');
    img.src = r.data_url;
    img.dataset.qr = r.qr || '';
    $('#qr-box').hidden = false;
    $('#session-info').textContent = '';
    $('#demo-scan').hidden = !(S.me && S.me.demo);
  } catch (e) {
    if (e.name === 'AbortError' || seq !== S.qrSeq) return;
    if (e.status === 409) { // READY meanwhile
      loadSession();
      return;
    }
    $('#session-info').textContent = e.status === 504 ? t('session.qrtimeout') : e.message;
    $('#qr-retry').hidden = false;
  } finally {
    if (S.qrAbort === ctl) S.qrAbort = null;
  }
}

// renderReach shows the cliente's reach lock (WhatsApp refuses new chats)
// while it holds; an ended lock, or none, hides it.
function renderReach(l) {
  const p = $('#reach-lock');
  if (l && l.cliente && l.cliente !== S.cliente) return;
  const holds = l && l.activo && new Date(l.hasta) > new Date();
  p.hidden = !holds;
  p.textContent = holds ? t('session.reach', { until: fmtTime(l.hasta) }) : '';
  p.dataset.until = holds ? l.hasta : '';
}

// whyText says a send wait's reason (and its end) in plain words.
function whyText(why, until) {
  const w = t(`why.${why}`);
  const u = until && !until.startsWith('0001') ? t('send.until', { at: fmtTime(until) }) : '';
  return { why: w.startsWith('why.') ? why : w, until: u };
}

// renderSending shows why the cliente's sending is paused, while it is.
// A paused session already says so in its badge: the line is for the rest.
function renderSending(st) {
  const p = $('#send-state');
  if (st && st.cliente && st.cliente !== S.cliente) return;
  const show = st && st.estado === 'pausado' && st.motivo !== 'sesion';
  p.hidden = !show;
  p.textContent = show ? t('send.paused', whyText(st.motivo, st.hasta)) : '';
  p.dataset.reason = show ? st.motivo : '';
}

function renderSession(s) {
  const b = $('#session-badge');
  const label = t(`sess.${s.estado}`);
  b.textContent = label.startsWith('sess.') ? s.estado : label;
  b.dataset.state = s.estado;
  const ready = s.estado === 'READY';
  const info = [];
  if (ready && s.jid) info.push(t('session.device', { jid: s.jid }));
  if (ready && s.at) info.push(t('session.since', { at: fmtTime(s.at) }));
  if (s.error) info.push(s.error);
  const stuck = ['LOGGED_OUT', 'REPLACED', 'ERROR'].includes(s.estado);
  if (ready || stuck || info.length) $('#session-info').textContent = info.join(' · ');
  $('#session-logout').hidden = !ready;
  $('#pair-form').hidden = ready;
  if (ready) $('#pair-code').textContent = '';
  $('#session-start').hidden = !stuck;
  if (ready || stuck) {
    $('#qr-box').hidden = true;
    $('#demo-scan').hidden = true;
  }
  if (!ready && !$('#qr-box').hidden) $('#demo-scan').hidden = !(S.me && S.me.demo);
}

async function demoScan() {
  const btn = $('#demo-scan');
  btn.disabled = true;
  try {
    await api('POST', '/api/demo/scan', { cliente: S.cliente });
    $('#session-info').textContent = t('session.scanned');
  } catch (e) {
    toast(e.message);
  } finally {
    btn.disabled = false;
  }
}

async function sessionStart() {
  try {
    await api('POST', `${clientePath(S.cliente)}/session/start`);
  } catch (e) {
    if (e.status !== 409) { toast(e.message); return; }
  }
  fetchQR();
}

async function pair(ev) {
  ev.preventDefault();
  const phone = $('#pair-phone').value.trim();
  try {
    const r = await api('POST', `${clientePath(S.cliente)}/session/pair`, { phone });
    $('#pair-code').textContent = t('session.paircode', { code: r.code });
  } catch (e) {
    toast(e.message);
  }
}

async function logout() {
  if (!confirm(t('session.logoutq'))) return;
  try {
    await api('POST', `${clientePath(S.cliente)}/session/logout`);
  } catch (e) {
    toast(e.message);
  }
}

// ---------- campaigns ----------

async function loadCampaigns() {
  const id = S.cliente;
  try {
    const list = await api('GET', `${clientePath(id)}/campaigns`);
    if (id !== S.cliente) return;
    S.campaigns = Array.isArray(list) ? list : list.items || [];
  } catch (e) {
    toast(e.message);
    return;
  }
  renderCampaigns();
  await Promise.all(S.campaigns.map((c) => loadStats(c.id)));
  if (!S.camp && S.campaigns.length) {
    const active = S.campaigns.find((c) => c.estado === 'activa' || c.estado === 'pausada') || S.campaigns[S.campaigns.length - 1];
    selectCampaign(active.id);
  } else if (S.camp) {
    renderCampaign();
  }
}

async function loadStats(cid) {
  const cl = S.cliente;
  try {
    const st = await api('GET', `${campPath(cl, cid)}/stats`);
    if (cl !== S.cliente) return;
    S.stats[cid] = st;
    const c = S.campaigns.find((x) => x.id === cid);
    if (c && st.estado) c.estado = st.estado;
  } catch (e) {
    if (e.status !== 404) toast(e.message);
    return;
  }
  renderCampaignItem(cid);
  if (cid === S.camp) { renderCampaign(); reloadEnvios(); }
}

const statsTimers = {};
// scheduleStats re-reads a campaign's counters at most twice a second, so a
// burst of envío events costs one request (the live deltas keep the numbers
// moving in between; the re-read corrects any event lost on the way).
function scheduleStats(cid) {
  if (statsTimers[cid]) return;
  statsTimers[cid] = setTimeout(() => { delete statsTimers[cid]; loadStats(cid); }, 500);
}

function progressOf(st) {
  const total = st ? st.total || 0 : 0;
  const open = st ? st.abiertos || 0 : 0;
  const done = Math.max(0, total - open);
  return { total, done, pct: total ? Math.floor((done * 100) / total) : 0 };
}

function renderCampaigns() {
  const ul = $('#campaign-list');
  ul.replaceChildren();
  if (!S.campaigns.length) ul.append(h('li', { class: 'muted', text: t('campaigns.none') }));
  for (const c of S.campaigns) ul.append(h('li', { 'data-campaign': c.id }));
  for (const c of S.campaigns) renderCampaignItem(c.id);
}

function renderCampaignItem(cid) {
  const li = document.querySelector(`#campaign-list li[data-campaign="${CSS.escape(cid)}"]`);
  const c = S.campaigns.find((x) => x.id === cid);
  if (!li || !c) return;
  const st = S.stats[cid];
  const p = progressOf(st);
  const pid = `cp-${cid}`;
  li.replaceChildren(
    h('button', {
      type: 'button', class: 'camp', 'aria-current': cid === S.camp ? 'true' : null,
      onclick: () => selectCampaign(cid),
    },
    h('span', { class: 'camp-name', text: c.nombre || c.id }),
    h('span', { class: `badge camp-${c.estado}`, text: t(`camp.${c.estado}`) }),
    h('span', { class: 'camp-p muted', id: pid, text: t('campaigns.progress', { done: nf().format(p.done), total: nf().format(p.total), pct: p.pct }) }),
    h('progress', { max: p.total || 1, value: p.done, 'aria-labelledby': pid }),
    st && st.espera ? h('span', { class: 'camp-wait muted', text: t('campaigns.waits', whyText(st.espera.motivo, st.espera.hasta)) }) : null),
  );
}

function selectCampaign(cid) {
  S.camp = cid;
  for (const c of S.campaigns) renderCampaignItem(c.id);
  $('#campaign').hidden = false;
  $('#import-report').replaceChildren();
  $('#upload-progress').value = 0;
  $('#import-progress').value = 0;
  $('#envios').replaceChildren();
  renderCampaign();
  loadChart(cid);
  loadEnvios(false);
}

function renderCampaign() {
  const c = S.campaigns.find((x) => x.id === S.camp);
  if (!c) { $('#campaign').hidden = true; return; }
  const st = S.stats[c.id] || { conteos: {}, total: 0, abiertos: 0 };
  const estado = st.estado || c.estado;
  $('#campaign-h').replaceChildren(c.nombre || c.id, ' ', h('button', { type: 'button', class: 'ghost small', onclick: () => openEditor(c.id), text: t('act.edit') }));
  const badge = $('#campaign-estado');
  badge.textContent = t(`camp.${estado}`);
  badge.dataset.state = estado;
  badge.className = `badge camp-${estado}`;
  const p = progressOf(st);
  const pr = $('#campaign-progress');
  pr.max = p.total || 1;
  pr.value = p.done;
  pr.dataset.done = p.done;
  pr.dataset.total = p.total;
  $('#campaign-progress-label').textContent = t('campaigns.progress', { done: nf().format(p.done), total: nf().format(p.total), pct: p.pct });
  const dl = $('#counts');
  dl.replaceChildren();
  for (const s of ST) {
    const n = (st.conteos || {})[s] || 0;
    dl.append(h('div', { class: `count st-${s}`, 'data-state': s }, h('dt', { text: t(`st.${s}`) }), h('dd', { text: nf().format(n), 'data-n': n })));
  }
  $('#act-start').hidden = estado !== 'borrador';
  $('#act-pause').hidden = estado !== 'activa';
  $('#act-resume').hidden = estado !== 'pausada';
  $('#act-cancel').hidden = !['borrador', 'activa', 'pausada'].includes(estado);
  $('#upload-form').querySelector('button[type=submit]').disabled = ['terminada', 'cancelada'].includes(estado);
  drawChart();
}

function onEnvio(d) {
  const cid = d.campana;
  const st = S.stats[cid];
  if (st && st.conteos) {
    if (d.from) st.conteos[d.from] = Math.max(0, (st.conteos[d.from] || 0) - 1);
    if (d.to) st.conteos[d.to] = (st.conteos[d.to] || 0) + 1;
    const open = (st.conteos.pendiente || 0) + (st.conteos.enviando || 0);
    st.abiertos = open;
    renderCampaignItem(cid);
    if (cid === S.camp) renderCampaign();
  }
  const ch = S.chart[cid];
  if (ch) {
    const at = d.at ? Date.parse(d.at) : Date.now();
    if (ch.ready) addPoint(ch, d.from, d.to, at);
    else ch.queue.push([d.from, d.to, at]);
    if (cid === S.camp) drawChart();
  }
  if (cid) scheduleStats(cid);
  if (S.me.role === 'admin') reloadJournal();
}

function onCampaign(d) {
  const cid = d.campana;
  const c = S.campaigns.find((x) => x.id === cid);
  if (!c) { loadCampaigns(); return; }
  if (d.estado) {
    c.estado = d.estado;
    if (S.stats[cid]) S.stats[cid].estado = d.estado;
  }
  renderCampaignItem(cid);
  if (cid === S.camp) renderCampaign();
  scheduleStats(cid);
  if (S.me.role === 'admin') reloadJournal();
}

async function act(action) {
  const cid = S.camp;
  if (action === 'cancel' && !confirm(t('act.cancelq'))) return;
  try {
    await api('POST', `${campPath(S.cliente, cid)}/${action}`);
  } catch (e) {
    toast(e.message);
  }
  scheduleStats(cid);
}

// ---------- chart ----------

const SENT = new Set(['enviado', 'entregado', 'leido']);

const RANK = { enviado: 1, entregado: 2, leido: 3 };

// addPoint extends the series with one live transition: an envío counts as
// sent, delivered and read from the first time it reaches each level.
function addPoint(ch, from, to, at) {
  const a = RANK[from] || 0, b = RANK[to] || 0;
  const push = (s) => { s.push(at); if (s.length > 1 && s[s.length - 2] > at) s.sort((x, y) => x - y); };
  if (a < 1 && b >= 1) push(ch.sent);
  if (a < 2 && b >= 2) push(ch.delivered);
  if (a < 3 && b >= 3) push(ch.read);
}

// loadChart backfills the series from the envíos (the time each was sent
// and last updated); live events extend it afterwards.
async function loadChart(cid) {
  const cl = S.cliente;
  const ch = { sent: [], delivered: [], read: [], ready: false, queue: [] };
  S.chart[cid] = ch;
  let after = '';
  for (let page = 0; page < 50; page++) {
    let r;
    try {
      r = await api('GET', `${campPath(cl, cid)}/envios?limit=1000${after ? `&after=${enc(after)}` : ''}`);
    } catch {
      break;
    }
    if (S.chart[cid] !== ch) return;
    for (const e of r.items || []) {
      const upd = Date.parse(e.actualizado || e.enviado_en || '') || Date.now();
      const sent = Date.parse(e.enviado_en || '') || upd;
      if (SENT.has(e.estado)) ch.sent.push(sent);
      if (e.estado === 'entregado' || e.estado === 'leido') ch.delivered.push(upd);
      if (e.estado === 'leido') ch.read.push(upd);
    }
    if (!r.next || !(r.items || []).length) break;
    after = r.next;
  }
  for (const s of [ch.sent, ch.delivered, ch.read]) s.sort((a, b) => a - b);
  ch.ready = true;
  for (const [f, to, at] of ch.queue) addPoint(ch, f, to, at);
  ch.queue = [];
  if (cid === S.camp) drawChart();
}

let chartFrame = 0;
function drawChart() {
  if (chartFrame) return;
  chartFrame = requestAnimationFrame(() => { chartFrame = 0; drawChartNow(); });
}

const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const k of kids) el.append(k);
  return el;
}

function drawChartNow() {
  const box = $('#chart');
  const ch = S.chart[S.camp];
  box.replaceChildren();
  if (!ch) return;
  const series = [
    ['sent', ch.sent, '#1f5fbf', 7],
    ['delivered', ch.delivered, '#13703a', 4.5],
    ['read', ch.read, '#8e24aa', 2],
  ];
  const legend = h('ul', { class: 'legend' }, series.map(([k, s]) =>
    h('li', { class: `lg-${k}` }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), `${t(`chart.${k}`)}: `, h('strong', { 'data-series': k, text: nf().format(s.length) }))));
  if (!ch.sent.length && !ch.delivered.length) {
    box.append(legend, h('p', { class: 'muted', text: t('chart.empty') }));
    return;
  }
  const nonEmpty = [ch.sent, ch.delivered, ch.read].filter((s) => s.length);
  const t0 = Math.min(...nonEmpty.map((s) => s[0]));
  const t1 = Math.max(...nonEmpty.map((s) => s[s.length - 1]), t0 + 1000);
  const st = S.stats[S.camp];
  const ymax = Math.max(ch.sent.length, ch.delivered.length, (st && st.total) || 0, 1);
  const W = 640, H = 220, L = 44, R = 10, T = 10, B = 28;
  const x = (v) => L + ((v - t0) / (t1 - t0)) * (W - L - R);
  const y = (n) => T + (1 - n / ymax) * (H - T - B);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart-svg', preserveAspectRatio: 'none' });
  const label = t('chart.summary', { sent: ch.sent.length, delivered: ch.delivered.length, read: ch.read.length, from: fmtTime(t0), to: fmtTime(t1) });
  g.setAttribute('aria-label', label);
  g.append(svg('title', {}, label));
  for (const f of [0, 0.5, 1]) {
    const yy = y(ymax * f);
    g.append(svg('line', { x1: L, x2: W - R, y1: yy, y2: yy, class: 'grid' }));
    g.append(svg('text', { x: L - 6, y: yy + 4, 'text-anchor': 'end', class: 'axis' }, nf().format(Math.round(ymax * f))));
  }
  const tf = (v) => new Date(v).toLocaleTimeString(lang === 'es' ? 'es-AR' : 'en-US', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  g.append(svg('text', { x: L, y: H - 8, class: 'axis' }, tf(t0)));
  g.append(svg('text', { x: W - R, y: H - 8, 'text-anchor': 'end', class: 'axis' }, tf(t1)));
  for (const [k, s, color, width] of series) {
    if (!s.length) continue;
    const pts = [`${x(t0)},${y(0)}`];
    const step = Math.max(1, Math.ceil(s.length / 400)); // at most ~800 vertices
    for (let i = 0; i < s.length; i += step) {
      const j = Math.min(i + step, s.length);
      pts.push(`${x(s[i])},${y(i)}`, `${x(s[j - 1])},${y(j)}`);
    }
    pts.push(`${x(t1)},${y(s.length)}`);
    // Wider lines below, so coinciding series stay visible.
    g.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': width, class: `line-${k}`, 'vector-effect': 'non-scaling-stroke', 'stroke-linejoin': 'round' }));
  }
  box.append(g, legend);
}

// ---------- upload ----------

function upload(ev) {
  ev.preventDefault();
  const file = $('#csv-file').files[0];
  if (!file) return;
  const cl = S.cliente, cid = S.camp;
  const up = $('#upload-progress'), imp = $('#import-progress');
  const btn = $('#upload-form').querySelector('button[type=submit]');
  up.value = 0; imp.value = 0;
  up.removeAttribute('data-done');
  $('#import-report').replaceChildren();
  btn.disabled = true;
  const isJSON = /\.json$/i.test(file.name) || file.type === 'application/json';
  const xhr = new XMLHttpRequest();
  xhr.open('POST', `${campPath(cl, cid)}/envios`);
  xhr.setRequestHeader('Authorization', `Bearer ${token}`);
  xhr.setRequestHeader('Content-Type', isJSON ? 'application/json' : 'text/csv');
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) { up.max = e.total; up.value = e.loaded; } };
  xhr.onerror = () => { btn.disabled = false; toast(t('err.network')); };
  xhr.onload = () => {
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    up.max = 1; up.value = 1; up.dataset.done = '1';
    if (xhr.status >= 400 || !data) {
      btn.disabled = false;
      if (xhr.status === 401) { signOut(t('login.bad')); return; }
      showImportError((data && data.error && data.error.message) || xhr.statusText);
      return;
    }
    if (data.job) followJob(cl, cid, data.job, file.size, btn);
    else { showReport(data.report || data); btn.disabled = false; }
  };
  xhr.send(file);
}

async function followJob(cl, cid, job, size, btn) {
  const imp = $('#import-progress');
  for (;;) {
    let j;
    try {
      j = await api('GET', `${clientePath(cl)}/imports/${enc(job)}`);
    } catch (e) {
      btn.disabled = false;
      showImportError(e.message);
      return;
    }
    if (j.state === 'running') {
      const total = j.total || size || 1;
      imp.max = total;
      imp.value = Math.min(j.bytes || 0, total);
      $('#import-progress-label').textContent = t('upload.rows', { rows: nf().format(j.rows || 0) });
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    btn.disabled = false;
    imp.max = 1; imp.value = 1;
    if (j.state === 'failed') { showImportError(j.error || 'error'); return; }
    $('#import-progress-label').textContent = t('upload.rows', { rows: nf().format((j.report && j.report.filas) || j.rows || 0) });
    imp.dataset.done = '1';
    showReport(j.report || {});
    if (cl === S.cliente) { loadStats(cid); if (cid === S.camp) loadEnvios(false); }
    return;
  }
}

function showImportError(msg) {
  $('#import-report').replaceChildren(h('p', { class: 'error', role: 'alert', id: 'import-error', text: t('upload.failed', { error: msg }) }));
}

function showReport(r) {
  const box = $('#import-report');
  const nums = ['filas', 'aceptados', 'duplicados', 'suprimidos', 'rechazados'];
  const parts = [
    h('h4', { text: t('report.title') }),
    h('dl', { class: 'counts report' }, nums.map((k) => h('div', { 'data-key': k }, h('dt', { text: t(`report.${k}`) }), h('dd', { text: nf().format(r[k] || 0), 'data-n': r[k] || 0 })))),
  ];
  if ((r.rechazos || []).length) {
    parts.push(table('report-rechazos', t('report.rechazos'), [t('report.linea'), t('report.motivo')], r.rechazos.map((x) => [x.linea, x.motivo])));
  }
  if ((r.omitidos || []).length) {
    parts.push(table('report-omitidos', t('report.omitidos'), [t('report.linea'), t('report.telefono'), t('report.motivo')], r.omitidos.map((x) => [x.linea, x.telefono, x.motivo])));
  }
  box.replaceChildren(h('div', { id: 'report', class: 'report-box' }, parts));
}

function table(id, caption, heads, rows) {
  return h('div', { class: 'scroll' }, h('table', { id },
    caption ? h('caption', { text: caption }) : null,
    h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col', text: x })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', { text: c ?? '' })))))));
}

// ---------- envíos listing ----------

async function loadEnvios(more) {
  const cl = S.cliente, cid = S.camp;
  if (!cid) return;
  const estado = $('#envios-estado').value;
  let q = `limit=50${estado ? `&estado=${enc(estado)}` : ''}`;
  if (more && S.enviosNext) q += `&after=${enc(S.enviosNext)}`;
  let r;
  try {
    r = await api('GET', `${campPath(cl, cid)}/envios?${q}`);
  } catch (e) {
    toast(e.message);
    return;
  }
  if (cl !== S.cliente || cid !== S.camp) return;
  S.enviosNext = r.next || '';
  S.enviosPaged = more;
  const box = $('#envios');
  const rows = (r.items || []).map((e) => [e.telefono, e.nombre, t(`st.${e.estado}`), e.intentos || 0, e.motivo || '']);
  let tb = box.querySelector('tbody');
  if (!more || !tb) {
    if (!rows.length) { box.replaceChildren(h('p', { class: 'muted', text: t('envios.none') })); return; }
    box.replaceChildren(table('envios-table', '', [t('report.telefono'), t('envios.nombre'), t('envios.estado'), t('envios.intentos'), t('report.motivo')], rows));
    tb = box.querySelector('tbody');
  } else {
    for (const rr of rows) tb.append(h('tr', {}, rr.map((c) => h('td', { text: c ?? '' }))));
  }
  box.querySelector('.more')?.remove();
  if (S.enviosNext) box.append(h('button', { type: 'button', class: 'more', onclick: () => loadEnvios(true), text: t('envios.more') }));
}

// reloadEnvios refreshes the listing while it shows only its first page.
const reloadEnvios = debounce(() => {
  if (!S.enviosPaged) loadEnvios(false);
}, 1500);

function fillEstados() {
  const sel = $('#envios-estado');
  const v = sel.value;
  sel.replaceChildren(h('option', { value: '', text: t('envios.all') }), ...ST.map((s) => h('option', { value: s, text: t(`st.${s}`) })));
  sel.value = v;
}

// ---------- editor ----------

function dayBoxes() {
  const box = document.querySelector('#editor .days');
  box.querySelectorAll('label').forEach((l) => l.remove());
  const names = t('days');
  for (let d = 0; d < 7; d++) {
    const cb = h('input', { type: 'checkbox', id: `ed-day-${d}`, value: d });
    box.append(h('label', { class: 'day', for: `ed-day-${d}` }, cb, names[d]));
  }
}

// seconds reads a ritmo duration as the API answers it, a Go duration
// ("1m30s", "1.5s", "500ms"); a number counts seconds.
const UNIT_S = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ns: 1e-9 };
function seconds(d) {
  if (typeof d === 'number') return d;
  let n = 0;
  for (const [, v, u] of String(d || '').matchAll(/([\d.]+)(h|ms|m|s|us|µs|μs|ns)/g)) n += parseFloat(v) * UNIT_S[u];
  return Math.round(n * 1000) / 1000;
}

function openEditor(cid) {
  const c = cid ? S.campaigns.find((x) => x.id === cid) : null;
  S.editing = c ? c.id : '';
  const sec = $('#editor');
  sec.hidden = false;
  $('#editor-error').textContent = '';
  $('#ed-script-error').textContent = '';
  const p = (c && c.programacion) || { dias: [1, 2, 3, 4, 5], desde: 9, hasta: 20, zona: 'America/Argentina/Buenos_Aires' };
  const r = (c && c.ritmo) || { min_delay: '8s', max_delay: '20s' };
  $('#ed-id').value = c ? c.id : '';
  $('#ed-id').disabled = !!c;
  $('#ed-nombre').value = c ? c.nombre || '' : '';
  $('#ed-plantilla').value = c ? c.plantilla || '' : 'Hola {{nombre}}, te escribimos por {{producto}}.';
  $('#ed-script').value = c ? c.script || '' : '';
  const dias = new Set(p.dias || []);
  for (let d = 0; d < 7; d++) $(`#ed-day-${d}`).checked = dias.has(d);
  $('#ed-desde').value = p.desde ?? 0;
  $('#ed-hasta').value = p.hasta || 24;
  $('#ed-zona').value = p.zona || '';
  $('#ed-cupo').value = p.cupo || 0;
  $('#ed-min').value = seconds(r.min_delay);
  $('#ed-max').value = seconds(r.max_delay);
  $('#ed-hora').value = r.por_hora || 0;
  $('#ed-dia').value = r.por_dia || 0;
  $('#ed-intentos').value = r.max_intentos || 0;
  previewNow();
  sec.scrollIntoView({ block: 'start' });
  (c ? $('#ed-nombre') : $('#ed-id')).focus();
}

function editorBody() {
  const dias = [];
  for (let d = 0; d < 7; d++) if ($(`#ed-day-${d}`).checked) dias.push(d);
  const num = (sel) => Number($(sel).value) || 0;
  return {
    id: $('#ed-id').value.trim(),
    nombre: $('#ed-nombre').value.trim(),
    plantilla: $('#ed-plantilla').value,
    script: $('#ed-script').value,
    programacion: { dias, desde: num('#ed-desde'), hasta: num('#ed-hasta'), zona: $('#ed-zona').value.trim(), cupo: num('#ed-cupo') },
    ritmo: {
      min_delay: num('#ed-min'), max_delay: num('#ed-max'), // seconds
      por_hora: num('#ed-hora'), por_dia: num('#ed-dia'), max_intentos: num('#ed-intentos'),
    },
  };
}

function showEditorError(e) {
  if (e.code === 'script') {
    const line = e.extra.line;
    $('#ed-script-error').textContent = line ? t('editor.line', { line, message: e.message }) : e.message;
    $('#ed-script').setAttribute('aria-invalid', 'true');
  } else {
    $('#editor-error').textContent = e.message;
  }
}

async function saveEditor(ev) {
  ev.preventDefault();
  $('#editor-error').textContent = '';
  $('#ed-script-error').textContent = '';
  $('#ed-script').removeAttribute('aria-invalid');
  const body = editorBody();
  const cl = S.cliente;
  try {
    if (S.editing) {
      const { id, ...patch } = body;
      await api('PATCH', campPath(cl, S.editing), patch);
    } else {
      await api('POST', `${clientePath(cl)}/campaigns`, body);
      S.editing = body.id;
      $('#ed-id').disabled = true;
    }
  } catch (e) {
    showEditorError(e);
    return;
  }
  toast(t('editor.saved'), 'ok');
  S.camp = S.editing;
  await loadCampaigns();
  selectCampaign(S.editing);
  previewNow();
}

let previewSeq = 0;
async function previewNow() {
  const out = $('#preview');
  const cid = S.editing;
  const seq = ++previewSeq;
  if (!cid) { out.textContent = t('editor.savefirst'); out.dataset.state = 'none'; return; }
  const vars = {};
  for (const line of $('#pv-vars').value.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) vars[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const body = {
    plantilla: $('#ed-plantilla').value,
    script: $('#ed-script').value,
    row: { telefono: $('#pv-telefono').value.trim(), nombre: $('#pv-nombre').value.trim(), variables: vars },
  };
  try {
    const r = await api('POST', `${campPath(S.cliente, cid)}/preview`, body);
    if (seq !== previewSeq) return;
    out.textContent = r.skip ? `${t('editor.skipped')}${r.reason ? `: ${r.reason}` : ''}` : r.text;
    out.dataset.state = 'ok';
    $('#ed-script-error').textContent = '';
  } catch (e) {
    if (seq !== previewSeq) return;
    out.textContent = '';
    out.dataset.state = 'error';
    if (e.code === 'script') showEditorError(e);
    else out.textContent = e.message;
  }
}
const preview = debounce(previewNow, 300);

// ---------- replies ----------

async function loadReplies() {
  const cl = S.cliente;
  let list;
  try {
    list = await api('GET', `${clientePath(cl)}/replies`);
  } catch (e) {
    if (e.status !== 404) toast(e.message);
    return;
  }
  if (cl !== S.cliente) return;
  list = Array.isArray(list) ? list : list.items || [];
  list.sort((a, b) => (b.seq || 0) - (a.seq || 0));
  const box = $('#replies');
  if (!list.length) { box.replaceChildren(h('p', { class: 'muted', text: t('replies.none') })); return; }
  box.replaceChildren(table('replies-table', '', [t('replies.when'), t('replies.telefono'), t('replies.texto'), t('replies.baja')],
    list.slice(0, 200).map((r) => [fmtTime(r.at), r.telefono, r.texto, r.baja ? t('replies.baja') : ''])));
  box.querySelectorAll('tbody tr').forEach((tr, i) => { if (list[i].baja) tr.classList.add('baja'); });
}
const reloadReplies = debounce(loadReplies, 400);

// ---------- journal ----------

async function loadJournal() {
  let list;
  try {
    // Without after= the API answers the tail (the newest records).
    list = await api('GET', `/api/journal?limit=${S.journalSeq ? 500 : 50}${S.journalSeq ? `&after=${S.journalSeq}` : ''}`);
  } catch (e) {
    if (e.status !== 403) toast(e.message);
    return;
  }
  list = (Array.isArray(list) ? list : list.items || []).sort((a, b) => a.seq - b.seq);
  if (!list.length && S.journal.length) return;
  for (const e of list) if (e.seq > S.journalSeq) { S.journal.push(e); S.journalSeq = e.seq; }
  S.journal = S.journal.slice(-100);
  const rows = [...S.journal].reverse().map((e) => [e.seq, fmtTime(e.time), e.kind, e.cliente || '',
    [e.campana, e.envio].filter(Boolean).join('/'), e.from || e.to ? `${e.from || '·'} → ${e.to || '·'}` : e.event || e.telefono || '', e.reason && e.reason !== e.event ? e.reason : '']);
  const box = $('#journal');
  if (!rows.length) { box.replaceChildren(h('p', { class: 'muted', text: t('journal.none') })); return; }
  box.replaceChildren(table('journal-table', '', ['#', t('replies.when'), t('journal.kind'), t('journal.cliente'), t('journal.envio'), t('journal.change'), t('report.motivo')], rows));
}
const reloadJournal = debounce(loadJournal, 1000);

// ---------- clientes form ----------

async function createCliente(ev) {
  ev.preventDefault();
  const body = { id: $('#cl-id').value.trim(), nombre: $('#cl-nombre').value.trim(), region: $('#cl-region').value.trim().toUpperCase() };
  try {
    await api('POST', '/api/clientes', body);
  } catch (e) {
    toast(e.message);
    return;
  }
  ev.target.reset();
  $('#cliente-new').open = false;
  await loadClientes();
  selectCliente(body.id);
}

// ---------- boot ----------

function rerender() {
  applyLang();
  dayBoxes();
  fillEstados();
  if (!S.me) return;
  renderClientes();
  if (S.session) renderSession(S.session);
  renderCampaigns();
  if (S.camp) { renderCampaign(); loadEnvios(false); }
}

function boot() {
  applyLang();
  dayBoxes();
  fillEstados();
  $('#lang').addEventListener('click', () => {
    lang = lang === 'es' ? 'en' : 'es';
    localStorage.setItem('lm.lang', lang);
    rerender();
    if (S.me) { loadReplies(); if (S.me.role === 'admin') { S.journal = []; S.journalSeq = 0; loadJournal(); } }
  });
  $('#signout').addEventListener('click', () => signOut());
  $('#login-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('#token').value.trim()); });
  $('#cliente-form').addEventListener('submit', createCliente);
  $('#demo-scan').addEventListener('click', demoScan);
  $('#qr-retry').addEventListener('click', fetchQR);
  $('#session-start').addEventListener('click', sessionStart);
  $('#pair-form').addEventListener('submit', pair);
  $('#session-logout').addEventListener('click', logout);
  $('#campaign-new').addEventListener('click', () => openEditor(''));
  for (const a of ['start', 'pause', 'resume', 'cancel']) $(`#act-${a}`).addEventListener('click', () => act(a));
  $('#upload-form').addEventListener('submit', upload);
  $('#envios-form').addEventListener('submit', (e) => { e.preventDefault(); loadEnvios(false); });
  $('#editor-form').addEventListener('submit', saveEditor);
  $('#editor-form').addEventListener('input', (e) => { if (e.target.closest('fieldset') && e.target.id !== 'ed-nombre') preview(); });
  $('#editor-close').addEventListener('click', () => { $('#editor').hidden = true; S.editing = null; });

  takeHashToken();
  const tok = sessionStorage.getItem('lm.token');
  if (tok) signIn(tok);
  else { $('#login').hidden = false; $('#token').focus(); }
}

boot();
