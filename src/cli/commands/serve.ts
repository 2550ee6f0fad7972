import type { Command } from 'commander';
import { checkConfig, loadConfig } from '../../config/load.js';
import { errorMessage } from '../../errors.js';
import { createLogger } from '../../log.js';
import { Gateway } from '../../gateway.js';
import { configPath } from '../context.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run every enabled listener until SIGTERM (SIGHUP reloads clients and policies)')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      const { config, generated } = await loadConfig(configPath(opts.config));
      const base = createLogger(config.log);
      // Start, stop and reload are always logged (unless silent), whatever the attempt log level.
      const log = config.log.level === 'silent' ? base : base.child({}, { level: base.isLevelEnabled('info') ? config.log.level : 'info' });
      for (const line of generated) log.warn({ notice: line }, 'generated on first start');
      const gateway = await Gateway.start(config, base);
      const done = new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          log.info({ signal }, 'stopping: draining attempts in flight');
          gateway.stop().then(
            () => {
              log.info('stopped');
              resolve();
            },
            (err: unknown) => {
              log.error({ err: errorMessage(err) }, 'stop failed');
              process.exitCode = 1;
              resolve();
            },
          );
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGHUP', () => {
          gateway.reload().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'reload refused; keeping the running configuration'));
        });
      });
      log.info({ gateway: config.gatewayName, radius: gateway.addresses(), http: gateway.httpAddresses(), config: config.file, store: config.store.sqlite.path }, 'ready');
      await done;
    });

  program
    .command('check-config')
    .description('validate the configuration; print each error as path.to.key: message')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      const file = configPath(opts.config);
      const problems = await checkConfig(file);
      if (problems.length > 0) {
        for (const p of problems) process.stderr.write(`${p}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`${file}: ok\n`);
    });
}
