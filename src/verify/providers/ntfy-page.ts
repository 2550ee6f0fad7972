/**
 * The page a tap on an ntfy sign-in notification opens (its `click` URL). With number matching
 * the three buttons are the numbers, so "Deny" and "Not me" live here. The page is a GET and
 * changes nothing: its forms post to the same single-use answer URLs the buttons use, so a link
 * preview, a prefetch or a browser reopening the tab never answers a push.
 */

export interface PageForm {
  readonly label: string;
  readonly action: string;
  readonly answer: 'deny' | 'fraud';
}

export function pendingPage(summary: string, forms: readonly PageForm[]): string {
  const body = [
    `<h1>Sign-in request</h1>`,
    `<p>${escapeHtml(summary)}</p>`,
    `<p>To approve, pick the number shown at the login prompt in the notification.</p>`,
    ...forms.map(
      (f) =>
        `<form method="post" action="${escapeHtml(f.action)}"><input type="hidden" name="answer" value="${f.answer}"><button type="submit">${escapeHtml(f.label)}</button></form>`,
    ),
  ];
  return page(body.join('\n'));
}

export function messagePage(text: string): string {
  return page(`<h1>Sign-in request</h1>\n<p>${escapeHtml(text)}</p>`);
}

function page(body: string): string {
  // no-referrer: the token in this page's URL must not travel to anything it links to.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>Sign-in request</title>
</head>
<body>
${body}
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
