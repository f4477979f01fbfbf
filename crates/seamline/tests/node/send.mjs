// Sends one call of each type through the official @segment/analytics-node
// client, unmodified, to the Seamline at SEAMLINE_HOST (see ../analytics_node.rs).
// Prints one JSON line: the messageId the library gave each call and the
// HTTP statuses it saw. Exits non-zero on any delivery error.
import { Analytics } from '@segment/analytics-node'

const host = process.env.SEAMLINE_HOST
const writeKey = process.env.SEAMLINE_WRITE_KEY
if (!host || !writeKey) {
  console.error('set SEAMLINE_HOST and SEAMLINE_WRITE_KEY')
  process.exit(2)
}

const analytics = new Analytics({
  writeKey,
  host,
  flushAt: 5,
  flushInterval: 200,
  // A broken server must fail the test in seconds, not after ten backoffs.
  maxRetries: 1,
  httpRequestTimeout: 5000,
})

const errors = []
analytics.on('error', (err) => {
  errors.push(`${err.code}: ${err.reason}`)
})
const statuses = []
analytics.on('http_response', (response) => {
  statuses.push(response.status)
})

const sent = {}
const remember = (type) => (err, ctx) => {
  if (err) {
    errors.push(`${type} callback: ${err}`)
  } else {
    sent[type] = ctx.event.messageId
  }
}

const userId = 'user-42'
const anonymousId = 'anon-7f3a'

analytics.identify(
  {
    userId,
    anonymousId,
    traits: {
      name: 'Алёна Щербакова',
      city: 'Санкт-Петербург',
      bio: 'Люблю кофе ☕ и котиков 🐈‍⬛',
      email: 'alena@example.com',
    },
  },
  remember('identify'),
)
analytics.track(
  {
    userId,
    event: 'Order Completed',
    properties: { order_id: 'ord-1001', revenue: 1490.5, currency: 'RUB', coupon: 'ВЕСНА-2024' },
    context: {
      campaign: {
        name: 'spring_sale',
        source: 'yandex',
        medium: 'cpc',
        term: 'кофе в зёрнах',
        content: 'banner_a',
      },
    },
  },
  remember('track'),
)
analytics.page(
  {
    anonymousId,
    category: 'Docs',
    name: 'Прайс-лист',
    properties: { url: 'https://shop.example/price', path: '/price' },
  },
  remember('page'),
)
analytics.screen(
  { userId, name: 'Корзина', properties: { items: 3 } },
  remember('screen'),
)
analytics.group(
  { userId, groupId: 'org-9', traits: { name: 'ООО «Ромашка» 🌼', employees: 12 } },
  remember('group'),
)
analytics.alias({ userId, previousId: anonymousId }, remember('alias'))

await analytics.closeAndFlush({ timeout: 20000 })

console.log(JSON.stringify({ sent, statuses, errors }))
process.exit(errors.length === 0 && Object.keys(sent).length === 6 ? 0 : 1)
