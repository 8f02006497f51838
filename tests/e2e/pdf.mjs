// A minimal PDF for the tests: one page per entry, each line drawn in Helvetica, exact xref
// offsets (poppler reads it without repairs). Lines must not contain ( ) or \.
export function makePdf(pages) {
  const objs = ['<< /Type /Catalog /Pages 2 0 R >>'];
  const kids = pages.map((_, i) => `${4 + 2 * i} 0 R`).join(' ');
  objs.push(`<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`);
  objs.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>');
  pages.forEach((lines, i) => {
    objs.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${5 + 2 * i} 0 R ` +
              '/Resources << /Font << /F1 3 0 R >> >> >>');
    const s = 'BT /F1 12 Tf 72 720 Td 16 TL\n' + lines.map((l) => `(${l}) Tj T*\n`).join('') + 'ET';
    objs.push(`<< /Length ${s.length} >>\nstream\n${s}\nendstream`);
  });
  let pdf = '%PDF-1.4\n';
  const offs = [];
  objs.forEach((o, i) => {
    offs.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const o of offs) pdf += `${String(o).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}
