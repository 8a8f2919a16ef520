import type { Command } from 'commander';
import { ConfigError, opt, parsePositiveInt, parsePositiveNumber, parseUrl } from '../options.js';

interface WeatherCliOptions {
  central: string; adminToken?: string; source?: 'openweather' | 'sim'; apiKey?: string; openweatherUrl: string;
  intervalS: number; timeoutMs: number; locations?: string;
}

/** `evcharging weather`: the weather service (EV_W): freezing CPs go out of service. */
export default function register(program: Command): void {
  program.command('weather')
    .description('read the temperature at each CP\'s location every few seconds and tell central (at or below 0 °C a CP goes out of service)')
    .addOption(opt('--central <url>', "central's HTTP URL", 'CENTRAL_HTTP_URL', parseUrl(['http', 'https']), 'http://localhost:8000'))
    .addOption(opt('--admin-token <token>', "central's admin token (the reports change what CPs may do)", 'CENTRAL_ADMIN_TOKEN'))
    .addOption(opt('--source <kind>', 'openweather (needs an API key) or sim (built-in simulated weather); default: openweather when a key is set', 'WEATHER_SOURCE')
      .choices(['openweather', 'sim']))
    .addOption(opt('--api-key <key>', 'OpenWeather API key', 'OPENWEATHER_API_KEY'))
    .addOption(opt('--openweather-url <url>', "OpenWeather's base URL (a local server in tests)", 'OPENWEATHER_URL', parseUrl(['http', 'https']), 'https://api.openweathermap.org'))
    .addOption(opt('--interval-s <s>', 'seconds between rounds', 'WEATHER_INTERVAL_S', parsePositiveNumber, 4))
    .addOption(opt('--timeout-ms <ms>', 'a weather answer slower than this counts as none', 'WEATHER_TIMEOUT_MS', parsePositiveInt, 2000))
    .addOption(opt('--locations <list|file>', 'CP locations: "CP-001=Oslo,NO;CP-002=Madrid,ES", or a JSON file {"CP-001":"Oslo,NO"}; others get a built-in city', 'WEATHER_LOCATIONS'))
    .action(async (o: WeatherCliOptions) => {
      if (!o.adminToken) throw new ConfigError('--admin-token (CENTRAL_ADMIN_TOKEN) is required');
      const kind = o.source ?? (o.apiKey ? 'openweather' : 'sim');
      if (kind === 'openweather' && !o.apiKey) throw new ConfigError('--api-key (OPENWEATHER_API_KEY) is required with --source openweather');
      const fs = await import('node:fs');
      const { parseLocations } = await import('../../weather/locations.js');
      let locations: Map<string, string>;
      try {
        const text = o.locations && !o.locations.includes('=') && fs.existsSync(o.locations) ? fs.readFileSync(o.locations, 'utf8') : o.locations ?? '';
        locations = parseLocations(text);
      } catch (err) {
        throw new ConfigError(`--locations (WEATHER_LOCATIONS): ${(err as Error).message}`);
      }
      const { openWeatherSource, simulatedSource } = await import('../../weather/sources.js');
      const source = kind === 'openweather' ? openWeatherSource({ baseUrl: o.openweatherUrl, apiKey: o.apiKey!, timeoutMs: o.timeoutMs }) : simulatedSource();
      const { startWeatherService } = await import('../../weather/service.js');
      const { serve } = await import('../../lib/serve.js');
      await serve('weather', async (log) => startWeatherService({
        centralUrl: o.central.replace(/\/+$/, ''), adminToken: o.adminToken!, source, locations, intervalMs: o.intervalS * 1000, log,
      }), { closing: (w, log) => log.info(w.stats(), 'weather totals') });
    });
}
