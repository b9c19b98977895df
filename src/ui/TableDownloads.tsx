import { download } from './download.ts';
import { tableCsv, tableJson, type Table } from './tables.ts';

/** CSV and JSON download buttons for a table the panel shows; `name` is the file name without extension. */
export function TableDownloads({ name, table, testId }: { name: string; table: () => Table; testId: string }) {
  return (
    <span className="row row--inline">
      <button type="button" className="button button--small button--quiet" onClick={() => download(`${name}.csv`, tableCsv(table()), 'text/csv')} data-testid={`${testId}-csv`}>
        CSV
      </button>
      <button type="button" className="button button--small button--quiet" onClick={() => download(`${name}.json`, tableJson(table()), 'application/json')} data-testid={`${testId}-json`}>
        JSON
      </button>
    </span>
  );
}
