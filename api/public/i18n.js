// Texts and number/time formats of the tenant and manager pages, in Chinese (default)
// and English: one language at a time. Figures come from the API as exact decimal
// strings and are only re-formatted as text here (never through binary floating point);
// times come as RFC 3339 at the site's offset, i.e. already in the site's local time.

export const LANGS = ['zh', 'en'];

const TEXT = {
  zh: {
    title: '电费',
    langSwitch: 'English',
    signOut: '退出登录',
    loginTitle: '登录',
    loginHint: '请用物业发给您的登录链接或二维码打开本页，手机会保持登录。',
    loginLinkUsed: '这个登录链接无效、已用过或已过期。请向物业索取新的链接。',
    loginSignedOut: '本设备已退出登录。请用新的登录链接登录。',
    tokenLogin: '使用访问令牌登录（程序或管理员）',
    tokenLabel: '访问令牌',
    tokenButton: '登录',
    tokenInvalid: '令牌无效或已撤销。',
    tooMany: '尝试次数过多，请稍后再试。',
    failed: '暂时无法加载，请稍后刷新。',
    unavailable: '服务暂时不可用，稍后自动重试。',
    managerHere: '这是租户页面。管理员请打开',
    managerPage: '管理页面',
    balance: '余额',
    status: { ok: '正常', low: '余额不足', negative: '已欠费' },
    left: (d) => `约可再用 ${d}`,
    hours: (h) => `${h} 小时`,
    days: (d) => `${d} 天`,
    lowWhat: '余额不足，请尽快充值。',
    negativeWhat: '您已欠费，请立即充值。',
    topUpHow: '充值方式：请联系物业管理处。',
    call: '联系',
    contactFallback: '请联系物业管理处。',
    now: '当前',
    priceNow: '当前电价',
    costHour: '每小时电费',
    power: '功率',
    today: '今日用电',
    usage: '用电曲线（最近两天，每小时 kWh）',
    nowMark: '现在',
    bills: '账单',
    billOpen: '未结账',
    billClosed: '已结账',
    billCols: ['项目', '电量 kWh', '金额'],
    kind: { own: '本户用电', common: '公共分摊', loss: '线损分摊' },
    opening: '期初余额',
    payments: '充值',
    charges: '电费',
    closing: '期末余额',
    printStatement: '打印账单',
    downloadCsv: '下载 CSV',
    paymentsTitle: '充值记录',
    alerts: '提醒',
    advice: '省电建议',
    adviceShift: (kwh, to, saving) => `过去 30 天里，若把尖峰和高峰时段约 ${kwh} kWh 的用电移到${to}时段，约可省 ${saving}。`,
    adviceNight: (kw) => `夜间（0–5 点）平均仍有 ${kw} kW 的用电，请检查无人时仍在运行的设备。`,
    none: '暂无',
    noBills: '暂无账单',
    updated: '更新于',
    period: { sharp: '尖峰', peak: '高峰', flat: '平段', valley: '低谷', deep_valley: '深谷' },
    month: (m) => `${m.slice(0, 4)}年${Number(m.slice(5, 7))}月`,
    dateTime: (t) => `${Number(t.slice(5, 7))}月${Number(t.slice(8, 10))}日 ${t.slice(11, 16)}`,
    date: (t) => `${t.slice(0, 4)}年${Number(t.slice(5, 7))}月${Number(t.slice(8, 10))}日`,
    pricePerKwh: (p) => `${p} 元/kWh`,
    // Power supply (prepaid cut-off, issue 13): the status card
    supplyTitle: '供电',
    supply: { on: '正常供电', off: '已断电', unknown: '暂未读到电表状态', restoring: '已到账，正在恢复供电…' },
    supplySince: (t) => `自 ${t} 起`,
    supplyRead: (t) => `电表状态读取于 ${t}`,
    supplyTopUp: '立即充值',
    // Online top-up (issue 14)
    topupOpen: '在线充值',
    topupTitle: '在线充值',
    topupAmount: '金额（元）',
    topupPayWith: '支付方式',
    provider: { wechat: '微信支付', alipay: '支付宝', stripe: '银行卡' },
    topupPay: '去支付',
    topupRange: (min, max) => `金额须在 ${min} 至 ${max} 之间，最多两位小数。`,
    topupHint: (m) => `订单 ${m} 分钟内有效，到账后余额自动更新。`,
    topupScan: { wechat: '请用微信扫码支付', alipay: '请用支付宝扫码支付', other: '请扫码支付' },
    topupLink: '打开支付页面',
    topupQrAlt: '支付二维码',
    topupState: { created: '等待支付', paid: '已到账', expired: '订单已过期', refunded: '已退款', review: '物业核对中，请稍候' },
    topupBefore: (t) => `请在 ${t} 前支付`,
    topupBack: '返回',
    topupClose: '关闭',
    topupFailed: '暂时无法下单，请稍后再试。',
    topupUpdating: '余额更新中…',
    // Manager page: relays
    relayCol: '供电',
    relayControl: '供电控制',
    override: { hold: '暂缓断电', 'force-close': '强制通电', 'force-trip': '强制断电' },
    mismatch: '读回不一致',
    pendingCmd: '命令执行中',
    deferredCut: '断电已推迟',
    relayWanted: '策略要求',
    relayMeters: '电表读回',
    relayReason: '原因（必填，记入审计）',
    relayUntil: '截止时间（可选）',
    relayRelease: '解除',
    relayMode: { off: '未启用远程断电', 'dry-run': '演练模式：只记录决定，不发送命令', on: '已启用远程断电' },
    relayDone: '已记录，将在下一个周期执行',
    relayCommands: '命令',
    restoreAmount: '恢复供电需缴',
    // Manager page
    overview: '账户总览',
    accountCol: '户号',
    nameCol: '名称',
    balanceCol: '余额',
    statusCol: '状态',
    hoursCol: '预计可用',
    actionsCol: '操作',
    recordPayment: '记录充值',
    amount: '金额（元）',
    reference: '付款流水号',
    time: '时间（可选）',
    save: '保存',
    cancel: '取消',
    recorded: '已记录',
    duplicate: '此笔已记录过',
    loginLink: '登录链接',
    linkFor: (a) => `${a} 的一次性登录链接`,
    linkHint: (t) => `用手机扫描二维码或打开链接，只能使用一次，${t} 前有效。`,
    copy: '复制链接',
    copied: '已复制',
    monthPrint: '打印本月全部账单',
    statsCsv: '导出账单统计 CSV',
    viewerNote: '只读账户：不能记录充值或发登录链接。',
  },
  en: {
    title: 'Electricity',
    langSwitch: '中文',
    signOut: 'Sign out',
    loginTitle: 'Sign in',
    loginHint: 'Open this page with the login link or QR code from your property manager; your phone then stays signed in.',
    loginLinkUsed: 'This login link is invalid, already used or expired. Ask your property manager for a new one.',
    loginSignedOut: 'This device was signed out. Sign in with a new login link.',
    tokenLogin: 'Sign in with an access token (programs and managers)',
    tokenLabel: 'Access token',
    tokenButton: 'Sign in',
    tokenInvalid: 'The token is invalid or revoked.',
    tooMany: 'Too many attempts; try again later.',
    failed: 'Could not load; refresh in a moment.',
    unavailable: 'The service is briefly unavailable; retrying.',
    managerHere: 'This is the tenant page. Managers, open the',
    managerPage: 'manager page',
    balance: 'Balance',
    status: { ok: 'OK', low: 'Low', negative: 'Overdrawn' },
    left: (d) => `about ${d} left`,
    hours: (h) => `${h} hours`,
    days: (d) => `${d} days`,
    lowWhat: 'Your balance is low. Please top up soon.',
    negativeWhat: 'Your account is overdrawn. Please top up now.',
    topUpHow: 'To top up, contact your property manager.',
    call: 'Contact',
    contactFallback: 'Contact your property manager.',
    now: 'Now',
    priceNow: 'Price now',
    costHour: 'Cost per hour',
    power: 'Power',
    today: 'Today',
    usage: 'Usage (last two days, kWh per hour)',
    nowMark: 'now',
    bills: 'Bills',
    billOpen: 'open',
    billClosed: 'closed',
    billCols: ['Item', 'kWh', 'Amount'],
    kind: { own: 'Your meter', common: 'Common area', loss: 'Line loss' },
    opening: 'Opening balance',
    payments: 'Payments',
    charges: 'Charges',
    closing: 'Closing balance',
    printStatement: 'Print statement',
    downloadCsv: 'Download CSV',
    paymentsTitle: 'Payments',
    alerts: 'Alerts',
    advice: 'Saving tips',
    adviceShift: (kwh, to, saving) => `Over the last 30 days, moving about ${kwh} kWh of sharp and peak use to ${to} hours would have saved about ${saving}.`,
    adviceNight: (kw) => `At night (0–5 h) you still draw ${kw} kW on average: check what stays on when nobody is there.`,
    none: 'None',
    noBills: 'No bills yet',
    updated: 'Updated',
    period: { sharp: 'Sharp', peak: 'Peak', flat: 'Flat', valley: 'Valley', deep_valley: 'Deep valley' },
    month: (m) => `${['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][Number(m.slice(5, 7)) - 1]} ${m.slice(0, 4)}`,
    dateTime: (t) => `${Number(t.slice(8, 10))} ${['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][Number(t.slice(5, 7)) - 1]} ${t.slice(11, 16)}`,
    date: (t) => `${Number(t.slice(8, 10))} ${['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][Number(t.slice(5, 7)) - 1]} ${t.slice(0, 4)}`,
    pricePerKwh: (p) => `¥${p}/kWh`,
    supplyTitle: 'Power supply',
    supply: { on: 'Power on', off: 'Power off', unknown: 'Meter not read yet', restoring: 'Payment received; power is coming back…' },
    supplySince: (t) => `since ${t}`,
    supplyRead: (t) => `meter read at ${t}`,
    supplyTopUp: 'Top up now',
    topupOpen: 'Top up online',
    topupTitle: 'Top up online',
    topupAmount: 'Amount (¥)',
    topupPayWith: 'Pay with',
    provider: { wechat: 'WeChat Pay', alipay: 'Alipay', stripe: 'Card' },
    topupPay: 'Pay',
    topupRange: (min, max) => `Enter an amount from ${min} to ${max}, at most 2 decimals.`,
    topupHint: (m) => `An order can be paid within ${m} minutes; your balance updates by itself.`,
    topupScan: { wechat: 'Scan with WeChat to pay', alipay: 'Scan with Alipay to pay', other: 'Scan to pay' },
    topupLink: 'Open the payment page',
    topupQrAlt: 'Payment QR code',
    topupState: { created: 'Waiting for payment', paid: 'Credited', expired: 'The order has expired', refunded: 'Refunded', review: 'Being checked by the property' },
    topupBefore: (t) => `Pay before ${t}`,
    topupBack: 'Back',
    topupClose: 'Close',
    topupFailed: 'The order could not be made; try again shortly.',
    topupUpdating: 'Updating your balance…',
    relayCol: 'Power',
    relayControl: 'Power control',
    override: { hold: 'Cut-off on hold', 'force-close': 'Forced on', 'force-trip': 'Forced off' },
    mismatch: 'read-back mismatch',
    pendingCmd: 'command running',
    deferredCut: 'cut deferred',
    relayWanted: 'Policy wants',
    relayMeters: 'Meters read back',
    relayReason: 'Reason (required, kept in the audit trail)',
    relayUntil: 'Until (optional)',
    relayRelease: 'Release',
    relayMode: { off: 'Remote cut-off is off', 'dry-run': 'Dry run: decisions are logged, nothing is sent', on: 'Remote cut-off is on' },
    relayDone: 'Recorded; applied at the next cycle',
    relayCommands: 'Commands',
    restoreAmount: 'To restore power, pay',
    overview: 'Accounts',
    accountCol: 'Account',
    nameCol: 'Name',
    balanceCol: 'Balance',
    statusCol: 'Status',
    hoursCol: 'Time left',
    actionsCol: 'Actions',
    recordPayment: 'Record payment',
    amount: 'Amount (CNY)',
    reference: 'Payment reference',
    time: 'Time (optional)',
    save: 'Save',
    cancel: 'Cancel',
    recorded: 'Recorded',
    duplicate: 'Already recorded',
    loginLink: 'Login link',
    linkFor: (a) => `One-time login link for ${a}`,
    linkHint: (t) => `Scan the QR code or open the link on the phone. It works once, until ${t}.`,
    copy: 'Copy link',
    copied: 'Copied',
    monthPrint: "Print this month's statements",
    statsCsv: 'Export bill statistics (CSV)',
    viewerNote: 'Read-only: cannot record payments or issue login links.',
  },
};

let lang = (() => {
  try {
    const saved = localStorage.getItem('submeter.lang');
    return LANGS.includes(saved) ? saved : 'zh';
  } catch {
    return 'zh';
  }
})();

export function currentLang() {
  return lang;
}

export function setLang(next) {
  lang = LANGS.includes(next) ? next : 'zh';
  try {
    localStorage.setItem('submeter.lang', lang);
  } catch {
    /* private mode: the choice lasts this page */
  }
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
}

/** A text (or text function) in the current language. */
export function t(key) {
  return TEXT[lang][key];
}

/** "1234.5" -> "1,234.5" (text only). */
function group(int) {
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Money text from the API ("-12.30") as ¥ with thousands separators ("−¥12.30"). */
export function money(text) {
  if (text === null || text === undefined) return '–';
  const neg = text.startsWith('-');
  const [i, f] = (neg ? text.slice(1) : text).split('.');
  return `${neg ? '−' : ''}¥${group(i)}${f !== undefined ? `.${f}` : ''}`;
}

/** A price text (6 decimals) to 4 decimals, half-up, exactly (digits, not floats). */
export function price4(text) {
  const m = /^(\d+)\.(\d+)$/.exec(text ?? '');
  if (!m) return text ?? '–';
  const frac = m[2].padEnd(6, '0');
  let n = BigInt(m[1] + frac.slice(0, 4));
  if (Number(frac[4]) >= 5) n += 1n;
  const s = n.toString().padStart(5, '0');
  return `${s.slice(0, -4)}.${s.slice(-4)}`;
}

/** Hours left ("52.3") as hours up to 48 h, as days above (one decimal). Not money: a number is fine. */
export function duration(hoursText) {
  if (hoursText === null || hoursText === undefined) return '';
  const h = Number(hoursText);
  return h > 48 ? t('days')((h / 24).toFixed(1)) : t('hours')(hoursText);
}
